"""Policies: list the packs, show one in words (and where its file is), export it, lint it, put one in force."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..policy.load import load_policy, pack_names
from .app import (EXIT_CHECK_FAILED, JsonFlag, LockWait, caller, err, escape, fail, handles_errors, open_registry, out,
                  policy_app, print_json, say, show)
from .grid import print_blocks


def named_or_current_policy(name: str | None):
    """A pack or file by name, or else the policy in force in the registry."""
    if name is None:
        with open_registry() as registry:
            return registry.policy
    return load_policy(name)


@policy_app.command("list")
@handles_errors
def policy_list(as_json: JsonFlag = False):
    """The policy packs shipped with socialcredit."""
    packs = [load_policy(name) for name in pack_names()]
    result = [{"id": p.id, "version": p.version, "title": p.document.policy.title} for p in packs]
    if as_json:
        print_json(result)
    else:
        for item in result:
            out.print(f"[bold]{item['id']}[/] {escape(item['version'])}: {escape(item['title'])}")


@policy_app.command("show")
@handles_errors
def policy_show(
    name: Annotated[Optional[str], typer.Argument(help="A pack name or TOML file (default: the registry's policy in force).")] = None,
    as_json: JsonFlag = False,
):
    """A policy's catalogue, dimensions, rules, tiers, lists and measures."""
    from ..policy.describe import describe

    from ..policy.describe import Line

    in_force = None
    if name is None:
        with open_registry() as registry:
            policy, in_force = registry.policy, registry.in_force()
    else:
        policy = load_policy(name)
    if as_json:
        extra = {"in_force": in_force.to_dict()} if in_force is not None else {}
        print_json({**policy.document.model_dump(mode="json"), "digest": policy.digest, "source": policy.source,
                    **extra})
        return
    blocks = describe(policy)
    blocks.insert(1, Line(f"Source: {_shown_source(policy.source)}"))  # under the title
    if in_force is not None and in_force.forced_reason is not None:
        blocks.insert(2, Line(f"FORCED into force despite {in_force.lint_errors} lint error(s) by "
                              f"{in_force.forced_by} on {in_force.activated_at[:10]}: {in_force.forced_reason}"))
    print_blocks(blocks)
    label = f" {name}" if name is not None else ""
    say(f"Machine-readable: socialcredit policy show{label} --json")


def _shown_source(source: str) -> str:
    """Where a policy comes from, for a person: a file below the current folder relative to it
    (still a path to open, and short enough for 80 columns), anything else as it is."""
    path = Path(source)
    if path.is_absolute() and path.is_file() and path.is_relative_to(Path.cwd()):
        return str(path.relative_to(Path.cwd()))
    return source


@policy_app.command("lint")
@handles_errors
def policy_lint(
    name: Annotated[Optional[str], typer.Argument(help="A pack name or TOML file (default: the registry's policy in force).")] = None,
    as_json: JsonFlag = False,
):
    """Name cross-context sanctions, protected attributes and disproportionate measures. Exit 1 on errors."""
    from ..policy.lint import lint, summarize

    policy = named_or_current_policy(name)
    findings = lint(policy)
    counts = summarize(findings)
    if as_json:
        print_json({"policy": policy.ref(), "summary": counts, "findings": [f.to_dict() for f in findings]})
    else:
        colour = {"error": "red", "warning": "yellow", "info": "blue"}
        for f in findings:
            out.print(f"[{colour[f.severity]}]{f.severity}[/] [bold]{f.code}[/] {escape(f.subject)}: "
                      f"{escape(f.message)} ({escape(f.reference)})", highlight=False)
        out.print(", ".join(f"{n} {k}" for k, n in counts.items()))
    if any(f.severity == "error" for f in findings):
        raise typer.Exit(EXIT_CHECK_FAILED)


@policy_app.command("export")
@handles_errors
def policy_export(
    name: Annotated[Optional[str], typer.Argument(help="A pack name or TOML file (default: the registry's policy in force).")] = None,
    out_file: Annotated[Optional[Path], typer.Option("--out", help="Write it to this file instead of standard output.")] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite the --out file if it exists.")] = False,
    as_json: JsonFlag = False,
):
    """Write a policy's TOML as it is, comments and all, to start a policy of your own from it."""
    policy = named_or_current_policy(name)
    result = {"policy": policy.ref(), "source": policy.source, "out": None if out_file is None else str(out_file)}
    if out_file is None:
        if as_json:
            print_json({**result, "text": policy.text})
        else:
            sys.stdout.write(policy.text)
        return
    _write_file(out_file, policy.text, force)
    show(result, as_json, f"Wrote {escape(policy.label)} to {escape(str(out_file))}.")


def _write_file(path: Path, text: str, force: bool) -> None:
    """Write `text` to `path`; an existing file only with `force` (one-line errors, exit 2)."""
    if path.is_dir():
        fail(f"{path} is a folder; give a file name")
    try:
        # Mode "x" refuses an existing file in the same call that creates it: no race.
        with path.open("w" if force else "x", encoding="utf-8", newline="") as stream:
            stream.write(text)
    except FileExistsError:
        fail(f"{path} already exists; add --force to overwrite it")
    except FileNotFoundError:
        fail(f"{path}: no such folder {path.parent}")
    except OSError as exc:
        fail(f"{path}: cannot write it ({exc.__class__.__name__}: {exc.strerror or exc})")


@policy_app.command("activate")
@handles_errors
def policy_activate(
    name: Annotated[str, typer.Argument(help="A pack name or TOML file.")],
    force: Annotated[bool, typer.Option("--force", help="Put it in force despite lint errors (needs --reason; kept on the record).")] = False,
    reason: Annotated[Optional[str], typer.Option("--reason", help="Why it goes live despite lint errors.")] = None,
    as_json: JsonFlag = False,
):
    """Put a policy in force from now (a ledger entry) and rebuild every standing.

    A policy with lint errors is refused unless --force --reason, which the activation
    entry and the audit log keep. Also says (on stderr) which event types recorded in the
    ledger the policy's catalogue lacks: those records stop counting under it.
    """
    policy = load_policy(name)
    with open_registry() as registry:
        result = registry.activate(policy, caller=caller(), force=force, reason=reason, on_wait=LockWait())
    lint = result.lint
    err.print(f"lint: {_count(lint.error, 'error')}, {_count(lint.warning, 'warning')}, {lint.info} info — see "
              f"`socialcredit policy lint {name}`", markup=False, highlight=False, soft_wrap=True)
    dropped = result.dropped_event_types
    if dropped:
        shown = ", ".join(dropped[:10]) + (f", … and {len(dropped) - 10} more" if len(dropped) > 10 else "")
        verb = "stops" if len(dropped) == 1 else "stop"
        err.print(f"warning: {_count(len(dropped), 'recorded event type')} {verb} counting under {policy.id}: "
                  f"{shown}", markup=False, highlight=False, soft_wrap=True)
    if as_json:
        print_json(result)
    else:
        forced = f" (forced despite lint errors: {result.forced})" if result.forced else ""
        say(f"Policy {policy.id} {policy.version} in force from entry #{result.entry}{forced}.")


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
