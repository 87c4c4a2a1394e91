"""Running the CLI as real processes: the command line, a clean environment, and which
processes of a session are still alive (a command started with `start_new_session=True` is the
leader of its own session, so anything it left behind is found by the session id)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def cli(url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "socialcredit", "--db", url, *args]


def clean_env(**extra: str) -> dict:
    """This process's environment without any SOCIALCREDIT_ setting of the developer's, plus `extra`."""
    return {k: v for k, v in os.environ.items() if not k.startswith("SOCIALCREDIT_")} | {"COLUMNS": "200"} | extra


def session_members(session: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session:  # field 6 of /proc/PID/stat: the session id
                members.append(int(entry.name))
    return members


def start(command: list[str], env: dict) -> subprocess.Popen:
    """A command in a session of its own, its output captured, with Ctrl-C's default meaning.

    A shell without job control starts its background commands with SIGINT ignored, and an
    ignored signal stays ignored across exec: a suite started with `&` would otherwise send
    its commands an interrupt they never see."""
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True, preexec_fn=_default_interrupt)


def _default_interrupt() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
