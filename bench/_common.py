"""What both benchmark scripts share: notes on stderr, optional profiling, the environment."""

from __future__ import annotations

import cProfile
import io
import json
import platform
import pstats
import sqlite3
import sys
from contextlib import contextmanager
from pathlib import Path

_NAME = Path(sys.argv[0]).stem


def note(message: str) -> None:
    """Progress and remarks go to stderr: stdout carries only the one JSON line."""
    print(f"[{_NAME}] {message}", file=sys.stderr, flush=True)


@contextmanager
def profiled(top: int, what: str):
    """With `--profile N`: cProfile the timed region and list its top N functions by tottime."""
    if not top:
        yield
        return
    profile = cProfile.Profile()
    profile.enable()
    try:
        yield
    finally:
        profile.disable()
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(top)
        note(f"profile of {what} (figures below include the profiler's overhead):\n{out.getvalue()}")


def emit(report: dict) -> dict:
    """The one JSON line on stdout, with the machine it was measured on."""
    report = {**report, **environment()}
    sys.stdout.write(json.dumps(report) + "\n")
    sys.stdout.flush()
    return report


def environment() -> dict:
    return {"python": platform.python_version(), "sqlite_version": sqlite3.sqlite_version}
