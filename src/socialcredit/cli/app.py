"""The Typer application, its global options, and what every command shares.

A command parses its arguments, calls the library, and prints the result: as JSON with
`--json` (the result's `to_dict()`, the same the HTTP API serves), else in words for a
person. Every error the library raises on purpose is a `SocialCreditError`; its kind, not its
message, picks the exit status. Ctrl-C ends with one line and status 130.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import ErrorKind, SocialCreditError, excerpt
from ..intake.validation import refuse_unstorable_name, refuse_unstorable_text
from ..registry import DEFAULT_URL, Caller, Registry

EXIT_ERROR = 2
EXIT_DENIED = 3
EXIT_CHECK_FAILED = 1
EXIT_INTERRUPTED = 130
EXIT_BY_KIND = {kind: EXIT_ERROR for kind in ErrorKind} | {ErrorKind.TAMPERED: EXIT_CHECK_FAILED}

app = typer.Typer(
    name="socialcredit",
    help="An open, auditable social credit engine: ledger, policy, standing, decision.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
policy_app = typer.Typer(help="Show, lint and activate policies.", no_args_is_help=True)
app.add_typer(policy_app, name="policy")

class _Console:
    """A Rich console made the first time something is printed through it: a command that
    prints JSON (or nothing) does not pay for importing Rich."""

    def __init__(self, **options):
        self._options = options
        self._console = None

    def __getattr__(self, name: str):
        if self._console is None:
            from rich.console import Console

            console = Console(**self._options)
            # Measure the terminal (COLUMNS, LINES) at each print, not once when made: that is
            # what a console made before anything set COLUMNS does, and tests set it per command.
            console.width, console.height = None, None
            self._console = console
        return getattr(self._console, name)


out = _Console()
err = _Console(stderr=True)


def escape(text: str) -> str:
    """`text` with Rich's markup characters escaped (Rich is imported when first needed)."""
    from rich.markup import escape as rich_escape

    return rich_escape(text)


class Settings:
    db: str = DEFAULT_URL
    key_file: Path | None = None
    principal: str | None = None
    purpose: str | None = None


settings = Settings()

JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
KindOption = Annotated[str, typer.Option("--kind", help="person or organization (an 18-character unified social credit code).")]
AtOption = Annotated[Optional[str], typer.Option("--at", help="The time asked about (RFC 3339 or YYYY-MM-DD); default now.")]
SubjectArgument = Annotated[str, typer.Argument(help="The subject: national ID, unified social credit code or username; - reads it from standard input, @FILE from a file (so it is not in the process list).")]


@app.callback()
def _global(
    db: Annotated[str, typer.Option("--db", envvar="SOCIALCREDIT_DB", help="Database URL: sqlite:///FILE or postgresql://…")] = DEFAULT_URL,
    key_file: Annotated[Optional[Path], typer.Option("--key-file", envvar="SOCIALCREDIT_KEY_FILE", help="Pseudonym key file (default: beside a SQLite database). SOCIALCREDIT_KEY overrides it.")] = None,
    principal: Annotated[Optional[str], typer.Option("--as", envvar="SOCIALCREDIT_PRINCIPAL", help="Who is acting, for the audit log (default: cli:<your user name>).")] = None,
    purpose: Annotated[Optional[str], typer.Option("--purpose", envvar="SOCIALCREDIT_PURPOSE", help="Why, for the audit log (e.g. \"dispute 2026-17\").")] = None,
):
    """An open, auditable social credit engine: ledger, policy, standing, decision."""
    settings.db = db
    settings.key_file = key_file
    settings.principal = principal
    settings.purpose = purpose


def caller() -> Caller:
    """The principal the audit log names: `--as`, else the operating-system user."""
    name = settings.principal
    if not name:
        try:
            name = f"cli:{getpass.getuser()}"
        except (KeyError, OSError):
            name = f"cli:uid{os.getuid()}"
    else:  # both go into the audit log as given: a 300-character name or a NUL would not fit
        refuse_unstorable_name("--as", name)
    if settings.purpose is not None:
        refuse_unstorable_text("--purpose", settings.purpose)
    return Caller(name, "operator", settings.purpose)


ServerOption = Annotated[Optional[str], typer.Option("--server", envvar="SOCIALCREDIT_SERVER", help="Send this command to a running service (socialcredit serve) at this URL instead of opening --db.")]
ApiKeyOption = Annotated[Optional[str], typer.Option("--api-key", envvar="SOCIALCREDIT_API_KEY", help="The API key for --server (from `socialcredit principal add`).")]


@contextmanager
def open_registry(server: str | None = None, api_key: str | None = None) -> Iterator[Registry]:
    """The registry for one command. Every wait for another process's write lock is shown;
    a read that could not be recorded in the audit log (a read-only copy) is said, once.

    With `server`, a client of the service there instead (cli/remote.py)."""
    if server:
        from .remote import RemoteRegistry

        with RemoteRegistry(server, api_key, settings.purpose) as remote:
            yield remote  # type: ignore[misc]
        return
    with Registry.open(settings.db, key_file=settings.key_file, on_wait=LockWait()) as registry:
        yield registry
        if registry.audit_trail.unrecorded:
            warn(f"{registry.store.where} is read-only here, so this read is not recorded in its audit log")


def handles_errors(command):
    """Turn the errors a user can cause into one line and an exit status; Ctrl-C into 130."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except SocialCreditError as exc:
            fail(str(exc), EXIT_BY_KIND[exc.kind])
        except KeyboardInterrupt:
            fail("interrupted; nothing more was written", EXIT_INTERRUPTED)

    return wrapper


def fail(message: str, code: int = EXIT_ERROR):
    err.print(f"[bold red]error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(code)


def warn(message: str) -> None:
    # Plain text, one line, as Rich would print it unstyled: a warning does not make a
    # quick command (`check`) pay for importing Rich.
    sys.stderr.write(f"warning: {message}\n")
    sys.stderr.flush()


def print_json(value) -> None:
    if hasattr(value, "to_dict"):
        value = value.to_dict()
    sys.stdout.write(json.dumps(value, ensure_ascii=False, indent=2) + "\n")


def show(result, as_json: bool, line: str) -> None:
    """The result as JSON, or one line of text for a person (`line` is Rich markup)."""
    if as_json:
        print_json(result)
    else:
        out.print(line)


def say(text: str) -> None:
    """Plain text that may hold brackets (policy text, user values): never read as markup."""
    out.print(escape(text), highlight=False)


def day(instant: str | None, timezone: str) -> str:
    """An RFC 3339 instant as the date a reader of the policy sees: on the policy's calendar."""
    from ..instants import format_day, parse_stored_instant, zone_named

    return "—" if instant is None else format_day(parse_stored_instant(instant), zone_named(timezone))


def reference(value: str | None) -> str | None:
    """A subject reference as given, or read from standard input (`-`) or a file (`@FILE`):
    a national ID typed on the command line is visible to every user of the machine (`ps`)."""
    from ..errors import InvalidInput, NotFound

    if value == "-":
        text = sys.stdin.readline()
    elif value is not None and value.startswith("@"):
        path = Path(value[1:])
        if not path.is_file():
            raise NotFound(f"{value[1:]}: no such file (a reference @FILE names a file holding it)")
        text = path.read_text(encoding="utf-8").splitlines()[0] if path.stat().st_size else ""
    else:
        return value
    if not text.strip():
        raise InvalidInput("no reference given: standard input or the file was empty")
    return text.strip()


def kind_option(kind: str) -> str:
    from ..errors import InvalidInput

    if kind not in ("person", "organization"):
        raise InvalidInput(f"--kind must be person or organization, got {excerpt(kind)}")
    return kind


def progress(enabled: bool):
    """A progress bar on stderr when it is a terminal (and no --json)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not enabled or not err.is_terminal,
    )


class LockWait:
    """Says, once, that this command is waiting for another writer, then how long."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.reported = -1

    def __call__(self, waited_s: float) -> None:
        if not self.enabled or int(waited_s) <= self.reported:
            return
        if self.reported < 0:
            err.print("waiting for another process to finish writing to the registry…", highlight=False)
        elif int(waited_s) % 5 == 0:
            err.print(f"still waiting ({int(waited_s)} s)…", highlight=False)
        self.reported = int(waited_s)
