"""Finding, parsing and validating policy documents, with errors that name the place."""

from __future__ import annotations

import functools
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from ..errors import InvalidInput
from .compiled import Policy

DEFAULT_PACK = "rongcheng"


class PolicyError(InvalidInput):
    """A policy that cannot be used; the message names the file, the place and the cause."""


def pack_names() -> list[str]:
    folder = resources.files("socialcredit.policy") / "packs"
    return sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))


def pack_file(name: str) -> Traversable:
    """The TOML file of a shipped pack, where the installed package keeps it."""
    return resources.files("socialcredit.policy") / "packs" / f"{name}.toml"


def load_policy(name_or_path: str | Path | None = None) -> Policy:
    """A shipped pack by name (`rongcheng`), or a TOML file by path.

    The policy's `source` is where its text came from: the pack's file in the installed
    package, or the path as given.
    """
    target = str(name_or_path or DEFAULT_PACK)
    if target in pack_names():
        resource = pack_file(target)
        return parse_policy(resource.read_text(encoding="utf-8"), source=str(resource))
    path = Path(target)
    if not path.exists():
        raise PolicyError(
            f"{target}: no such policy file or pack (packs: {', '.join(pack_names())})"
        )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{target}: cannot read it ({exc.__class__.__name__}: {exc})") from None
    return parse_policy(text, source=str(path))


def parse_policy(text: str, source: str = "<policy>") -> Policy:
    """The policy a TOML text gives, validated and compiled; a PolicyError names the problem.

    A policy is immutable, so the same text from the same source is compiled once per process
    (a server, a test run and the linter ask for the same packs again and again)."""
    return _parse_policy(text, source)


@functools.lru_cache(maxsize=32)
def _parse_policy(text: str, source: str) -> Policy:
    # Imported here: a registry that opens a policy from its snapshot (snapshot.py) never needs them.
    from pydantic import ValidationError

    from .schema import PolicyDocument

    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"{source}: not valid TOML: {exc}") from None
    try:
        document = PolicyDocument.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(f"{source}: {_first_problem(exc, raw)}") from None
    return Policy(document, text, source)


def _first_problem(exc, raw: dict) -> str:
    """One line for the first problem: its path inside the document and the cause."""
    error = exc.errors()[0]
    path = _path_words(error["loc"], raw)
    message = error["msg"].removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = "unknown key (a typo?)"
    more = len(exc.errors()) - 1
    suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
    return f"{path}: {message}{suffix}" if path else f"{message}{suffix}"


def _path_words(loc: tuple, raw: dict) -> str:
    parts: list[str] = []
    node = raw
    for step in loc:
        if isinstance(step, int):
            ident = node[step].get("id") if isinstance(node, list) and step < len(node) and isinstance(node[step], dict) else None
            parts[-1] = f"{parts[-1]}[{step}]" + (f" (id {ident!r})" if ident else "")
        else:
            parts.append(str(step))
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            node = None
    return ".".join(parts)
