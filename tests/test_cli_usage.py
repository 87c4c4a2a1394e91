"""Usage mistakes and out-of-range values, through the real command: one line, status 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from socialcredit.registry import Registry

from conftest import sqlite_from_template


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    path = tmp_path_factory.mktemp("usage") / "r.db"
    Registry.init(sqlite_from_template(path), "rongcheng").close()
    return f"sqlite:///{path}"


def _run(db: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "socialcredit", "--db", db, *args], capture_output=True, text=True,
                          timeout=120)


@pytest.mark.parametrize("args, says", [
    (("prove", "-1"), "No such option: -1"),
    (("check",), "Missing argument"),
    (("nosuch",), "No such command 'nosuch'"),
    (("audit", "--limit", "x"), "Invalid value for '--limit'"),
    (("void", "99999999999999999999999", "--reason", "x"), "is not an event"),
    (("audit", "--limit", "99999999999999999999999"), "limit must be between 1 and 100,000"),
    (("audit", "--principal", "a\x01b"), "is not a name the audit log can hold"),
    (("replay", "d-\udcff"), "no decision"),
    (("--as", "x" * 300, "standing", "alice"), "at most 200 characters"),
])
def test_a_usage_mistake_is_one_line_and_status_2(db, args, says):
    done = _run(db, *[a.encode("utf-8", "surrogateescape").decode("utf-8", "replace") if "\udcff" in a else a
                      for a in args])
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr
    assert len(lines) == 1 and lines[0].startswith("error:") and says in lines[0], lines
    assert "Traceback" not in done.stderr


def test_no_arguments_show_the_help(db):
    done = subprocess.run([sys.executable, "-m", "socialcredit"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "Usage" in done.stdout + done.stderr
