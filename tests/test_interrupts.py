"""Ctrl-C during a long command: one line, status 130, no traceback, nothing half-written,
no process of the project left behind.

The command runs as a real process (in a session of its own, so that anything it started
can be found afterwards) and gets SIGINT at several moments of its work; each run must end
either finished (status 0) or interrupted (status 130), with the ledger intact and the batch
all in or not at all.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

from socialcredit.intake.readers import read_events
from socialcredit.registry import Registry

from conftest import sqlite_from_template
from processes import clean_env, cli, session_members, start

EVENTS = 30_000


def _cli(*args: str, db: Path) -> list[str]:
    return cli(f"sqlite:///{db}", *args)


# Setting up and inspecting happen in this process: only the command being interrupted runs as
# a process of its own (each process start costs a few tenths of a second).


def _init(db: Path, events: Path | None = None) -> None:
    with Registry.init(sqlite_from_template(db), "rongcheng") as registry:
        if events is not None:
            with events.open() as stream:
                assert not registry.ingest(read_events(stream, "jsonl")).errors


def _size(db: Path) -> int:
    with Registry.open(f"sqlite:///{db}") as registry:
        return registry.size()


def _verified(db: Path) -> bool:
    with Registry.open(f"sqlite:///{db}") as registry:
        return registry.verify().ok


def _events_file(path: Path) -> Path:
    with path.open("w") as out:
        for i in range(EVENTS):
            out.write(json.dumps({"subject": f"resident{i % 6_000}", "type": "traffic.violation",
                                  "occurred_at": f"2026-0{1 + i % 9}-1{i % 10}T08:00:00Z", "provider": "police",
                                  "key": f"t{i}", "attributes": {}}) + "\n")
    return path


def _interrupt(command: list[str], after_s: float) -> subprocess.CompletedProcess:
    process = start(command, clean_env())
    time.sleep(after_s)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    time.sleep(0.2)
    assert session_members(process.pid) == [], "a process of the command outlived it"
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr)


def _assert_one_line_interruption(done: subprocess.CompletedProcess) -> None:
    assert "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1:] == ["error: interrupted; nothing more was written"], done.stderr


def test_ctrl_c_during_ingest_writes_all_or_nothing(tmp_path):
    events = _events_file(tmp_path / "events.jsonl")
    # The moments are fractions of one whole run measured now, so that they land inside the
    # work however loaded the machine is.
    _init(tmp_path / "whole.db")
    started = time.monotonic()
    whole = subprocess.run(_cli("ingest", str(events), db=tmp_path / "whole.db"), env=clean_env(),
                           capture_output=True, text=True)
    assert whole.returncode == 0, whole.stderr
    took = time.monotonic() - started
    outcomes = []
    for trial, share in enumerate((0.15, 0.35, 0.6, 0.85)):
        db = tmp_path / f"r{trial}.db"
        _init(db)
        done = _interrupt(_cli("ingest", str(events), db=db), share * took)
        size = _size(db)
        if done.returncode == 130:
            _assert_one_line_interruption(done)
            assert size in (1, 1 + EVENTS)  # the commit either happened or it did not
        else:
            assert done.returncode == 0, done.stderr
            assert size == 1 + EVENTS
        assert _verified(db)
        outcomes.append((done.returncode, size))
    assert (130, 1) in outcomes, outcomes  # at least one run was stopped before its commit


def test_ctrl_c_during_verify_and_rebuild_ends_in_one_line(tmp_path):
    db = tmp_path / "r.db"
    _init(db, _events_file(tmp_path / "events.jsonl"))
    interrupted = 0
    for command in (("verify",), ("rebuild",)):
        for after_s in (0.8, 1.6):
            done = _interrupt(_cli(*command, db=db), after_s)
            assert done.returncode in (0, 130), done.stderr
            if done.returncode == 130:
                interrupted += 1
                _assert_one_line_interruption(done)
    assert interrupted >= 1  # at least one run was caught in the middle
    assert _verified(db)
    assert _size(db) == 1 + EVENTS
