"""`kill -9` during `ingest`: nothing of the command survives it, and the batch is all or nothing.

A big ingest runs as a real process, in a session of its own, and is killed with SIGKILL (no
handler, no cleanup) at four moments: starting, validating, holding the write lock (seen from
outside: the lock is taken; by then a second process validates the file's rest), and just
after its commit (the ledger has grown). No process of its session may outlive it (an ingest
once forked a worker that did), the ledger must verify, and it must hold none of the batch or
all of it. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import time
from pathlib import Path

from socialcredit.store import Database

from processes import clean_env, cli, session_members, start

EVENTS = 30_000  # longer than a streamed chunk: its rest is validated by a second process (intake/parallel.py)


def _events_file(path: Path) -> Path:
    """Events that name no provider: each run gives its own (`--provider`), so its keys are new."""
    with path.open("w") as out:
        for i in range(EVENTS):
            out.write(json.dumps({"subject": f"resident{i % 4_000}", "type": "traffic.violation",
                                  "occurred_at": f"2026-0{1 + i % 9}-1{i % 10}T08:00:00Z", "key": f"t{i}",
                                  "attributes": {}}) + "\n")
    return path


def _holds_the_write_lock(db: Database) -> bool:
    """Whether another connection holds the lock every append takes."""
    if db.backend == "sqlite":
        probe = sqlite3.connect(db.url.path, timeout=0, isolation_level=None)
        try:
            probe.execute("BEGIN IMMEDIATE")
            probe.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc), exc
            return True
        finally:
            probe.close()
    with db.read() as tx:
        return bool(tx.scalar("SELECT count(*) FROM pg_locks WHERE granted AND mode = 'ExclusiveLock' "
                              "AND relation = 'checkpoints'::regclass"))


def _stored_size(db: Database) -> int:
    with db.read() as tx:
        return tx.scalar("SELECT coalesce(max(size), 0) FROM checkpoints")


def _kill_when(process, moment) -> bool:
    """SIGKILL the process once `moment()` is true; False if it ended first."""
    while not moment():
        if process.poll() is not None:
            return False
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    return True


def _session_ends(session: int, within_s: float = 2.0) -> bool:
    """Whether the session's last process is gone within `within_s`: the child validating a
    long input is killed by the kernel when the ingest dies (PR_SET_PDEATHSIG), which takes
    the kernel a moment, not a wait for anything of the child's own."""
    deadline = time.monotonic() + within_s
    while session_members(session):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_kill_9_during_ingest_leaves_no_process_and_all_or_nothing(make_registry, tmp_path):
    registry = make_registry()
    db = registry.store.db
    events = _events_file(tmp_path / "events.jsonl")
    url = registry.store.db.url.text
    keyed = ("--key-file", str(tmp_path / "registry.key"))
    size = registry.size()
    trials = {  # moment → whether the batch is in the ledger afterwards
        "starting": (lambda started: time.monotonic() - started > 0.1, False),
        "validating": (lambda started: time.monotonic() - started > 0.3, False),
        "writing": (lambda started: _holds_the_write_lock(db), False),
        "committed": (lambda started: _stored_size(db) > size, True),
    }
    for provider, (moment, stored) in trials.items():
        process = start(cli(url, *keyed, "ingest", str(events), "--provider", provider), clean_env())
        started = time.monotonic()
        try:
            assert _kill_when(process, lambda: moment(started)), f"ingest ended before the moment {provider!r}"
        finally:
            process.kill()  # whatever happened above, this test leaves nothing running
            process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL
        assert _session_ends(process.pid), f"a process of the ingest killed while {provider} outlived it"
        size_now = _stored_size(db)
        assert size_now == (size + EVENTS if stored else size), provider  # all of the batch or none of it
        size = size_now
        assert registry.verify().ok is True
    # The batch killed while it was written can be sent again: none of it went in, and the
    # registry is not left locked.
    again = registry.ingest([json.loads(line) for line in events.open()], provider="writing")
    assert (again.accepted, again.duplicates, again.ledger_size) == (EVENTS, 0, size + EVENTS)
    assert registry.verify().ok is True
