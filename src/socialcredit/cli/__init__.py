"""The command line: each command parses, calls the library, and prints; nothing else.

    app.py               the Typer app, global options, errors → exit status, output helpers
    ledger_commands.py   init, ingest, void, rebuild, verify, root, prove, consistency
    subject_commands.py  standing, explain, check, replay, audit
    rating_commands.py   rate, enrol, reviews, respond, trust
    policy_commands.py   policy list, show, lint, activate
    demo_command.py      demo
    serve_commands.py    serve (the HTTP API)
    principal_commands.py principal add, list, revoke
    remote.py            the client behind --server (ingest, check, standing, explain, rate)
"""

from __future__ import annotations

from . import demo_command, ledger_commands, policy_commands, rating_commands, serve_commands, subject_commands  # noqa: F401  (registers)
from .app import app
from .principal_commands import principal_app

app.add_typer(principal_app, name="principal")


def main() -> None:
    app()


__all__ = ["app", "main"]
