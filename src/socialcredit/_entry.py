"""The `socialcredit` command's entry point: Ctrl-C at any moment ends in one line, status 130.

It is its own tiny module so that an interrupt during the imports (the CLI's modules are
imported only in here) is caught like one during a command.
"""

from __future__ import annotations

import os
import signal
import sys

EXIT_INTERRUPTED = 130


def main() -> None:
    try:
        from .cli import app

        sys.exit(_run(app))
    except SystemExit as exc:
        if exc.code == EXIT_INTERRUPTED:  # the CLI caught the interrupt and said so
            _exit_interrupted()
        raise
    except BaseException as exc:
        if not _from_an_interrupt(exc):
            raise
        sys.stderr.write("error: interrupted; nothing more was written\n")
        _exit_interrupted()
    finally:
        # The work is done (or undone): an interrupt now would only cut the exit short and
        # kill the process by the signal, hiding the status it was about to report.
        signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(app) -> int:
    """Run the CLI; a usage mistake (a missing argument, a bad option value) is one line too,
    not Click's usage block."""
    import typer

    from .cli.tree import click_group

    try:  # Typer 0.29 carries its own copy of Click; earlier versions use Click itself
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:
        from click.exceptions import ClickException, NoArgsIsHelpError

    try:
        result = click_group(app).main(standalone_mode=False)
    except NoArgsIsHelpError as exc:
        exc.show()  # no arguments at all: the help is what was asked for
        return 0
    except typer.Abort:
        raise KeyboardInterrupt from None  # Click turns Ctrl-C into Abort outside a command
    except ClickException as exc:
        context = getattr(exc, "ctx", None)
        command = context.command_path if context is not None else "socialcredit"
        message = " ".join(exc.format_message().split())
        sys.stderr.write(f"error: {command}: {message} (see {command} --help)\n")
        return exc.exit_code
    return result if isinstance(result, int) else 0


def _from_an_interrupt(exc: BaseException | None) -> bool:
    """A KeyboardInterrupt, or an error it caused: CPython 3.11 wraps an exception raised in
    `__set_name__` in a RuntimeError, and an interrupt while an import creates a class arrives so."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _exit_interrupted() -> None:
    """Exit with status 130, even when the interrupt landed in code run by `exec()`.

    CPython 3.11 remembers a KeyboardInterrupt that left a string run by `exec()` (dataclasses
    and named tuples build their methods that way, so an interrupted import is often in one)
    even after it was caught, and at the end of `python -m socialcredit` turns the exit into
    death by SIGINT: the parent saw status -2 instead of 130, and ignoring SIGINT does not help
    (the interpreter restores its default before it kills itself). `os._exit` keeps the status;
    by now the command has rolled back and closed its registry, so only the output is flushed.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the flush short
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can be said anyway
            pass
    os._exit(EXIT_INTERRUPTED)
