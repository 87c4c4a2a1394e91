"""The Click command tree behind the Typer app, each command built when it is first looked up.

Typer turns every command's signature into Click parameters when the program starts (for this
CLI's thirty commands, tens of milliseconds: most of a short command's own work), though a
process runs one command. Here each group holds a mapping that builds a command the first time
Click asks for it by name: `socialcredit check ...` builds `check` and nothing else, while
`--help` (which lists every command) builds them all. What is built is exactly what Typer
builds; only when it is built changes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, MutableMapping

import typer
from typer.core import TyperGroup
from typer.main import get_command_from_info, get_command_name, get_group_from_info, solve_typer_info_defaults
from typer.models import TyperInfo


def click_group(app: typer.Typer) -> TyperGroup:
    """The Click group Typer would build for `app` (a Typer with commands and no completion
    options), with its commands and subgroups built on demand."""
    return _group(TyperInfo(app), app)


class _LazyCommands(MutableMapping):
    """Command name → Click command, in the order the commands were declared; each built once."""

    def __init__(self, builders: dict[str, Callable[[], object]]):
        self._builders = builders
        self._built: dict[str, object] = {}

    def __getitem__(self, name: str):
        if name not in self._built:
            self._built[name] = self._builders[name]()  # KeyError for an unknown name, as a dict
        return self._built[name]

    def __setitem__(self, name: str, command) -> None:  # Click's add_command
        self._builders.setdefault(name, lambda: command)
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        del self._builders[name]
        self._built.pop(name, None)

    def __iter__(self) -> Iterator[str]:
        return iter(self._builders)

    def __len__(self) -> int:
        return len(self._builders)


def _group(info: TyperInfo, root: typer.Typer) -> TyperGroup:
    instance = info.typer_instance
    builders: dict[str, Callable[[], object]] = {}
    for command_info in instance.registered_commands:
        name = command_info.name or get_command_name(command_info.callback.__name__)
        builders[name] = _command_builder(command_info, root)
    for sub_info in instance.registered_groups:
        builders[solve_typer_info_defaults(sub_info).name] = _group_builder(sub_info, root)
    # The group itself (its callback's options: --db, --as, ...) is built by Typer, from an
    # instance that has the same callback and settings but no commands to build.
    bare = typer.Typer()
    bare.__dict__.update(instance.__dict__, registered_commands=[], registered_groups=[])
    group = get_group_from_info(_info_for(info, bare), pretty_exceptions_short=root.pretty_exceptions_short,
                                suggest_commands=root.suggest_commands, rich_markup_mode=root.rich_markup_mode)
    group.commands = _LazyCommands(builders)
    return group


def _info_for(info: TyperInfo, instance: typer.Typer) -> TyperInfo:
    copy = TyperInfo(instance)
    copy.__dict__.update({k: v for k, v in info.__dict__.items() if k != "typer_instance"})
    return copy


def _command_builder(command_info, root: typer.Typer) -> Callable[[], object]:
    return lambda: get_command_from_info(command_info, pretty_exceptions_short=root.pretty_exceptions_short,
                                         rich_markup_mode=root.rich_markup_mode)


def _group_builder(sub_info: TyperInfo, root: typer.Typer) -> Callable[[], object]:
    return lambda: _group(sub_info, root)
