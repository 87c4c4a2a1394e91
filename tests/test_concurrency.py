"""Many processes on one registry: writers wait their turn, readers never wait for them.

Eight `ingest` processes are started together, with `rebuild`, `policy activate`, `check` and
`standing` beside them, while this test holds the registry's write lock (as a long ingest would):
every writer must queue on it, and reads (`root`, `verify`) must answer meanwhile. Released, all
must succeed: every event stored once, the ledger gapless and verified, every materialized
standing equal to the fold. A writer that waits longer than SOCIALCREDIT_LOCK_TIMEOUT ends in one
line with status 2, having said that it waits. On SQLite and on PostgreSQL.
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from socialcredit.store import Database

from conftest import event
from processes import clean_env, cli, start
from test_materialized import _assert_materialized_equals_fold

INGESTS = 8
EVENTS_EACH = 400
WAITING = "waiting for another process to finish writing to the registry…"


class Running:
    """A CLI process in its own session whose output is read as it comes (a pipe left unread
    would stall it)."""

    def __init__(self, url: str, *args: str, env: dict):
        self.process = start(cli(url, *args), env)
        self.args = args
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [threading.Thread(target=self._read, args=(stream, lines), daemon=True)
                         for stream, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream, lines: list[str]) -> None:
        for line in stream:
            lines.append(line.rstrip("\n"))

    def said(self, line: str) -> bool:
        return line in self.stderr

    def wait(self, timeout: float = 120) -> subprocess.CompletedProcess:
        self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout)
        done = subprocess.CompletedProcess(self.args, self.process.returncode, "\n".join(self.stdout),
                                           "\n".join(self.stderr))
        assert "Traceback" not in done.stderr, done.stderr
        return done


@contextmanager
def holding_the_write_lock(url: str):
    """This test's own connection holds the lock every append takes (BEGIN IMMEDIATE on
    SQLite, the lock on `checkpoints` on PostgreSQL) until the block ends."""
    holder = Database.open(url)
    try:
        with holder.write(append=True):
            yield
    finally:
        holder.close()


def _waiting_on_postgres(url: str) -> int:
    """How many connections wait for the append lock (PostgreSQL reports no wait to the client)."""
    db = Database.open(url)
    try:
        with db.read() as tx:
            return tx.scalar("SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = 'checkpoints'::regclass")
    finally:
        db.close()


def _until(condition, deadline_s: float, what: str) -> None:
    deadline = time.monotonic() + deadline_s
    while not condition():
        assert time.monotonic() < deadline, f"{what} did not happen within {deadline_s} s"
        time.sleep(0.05)


def _events_file(path: Path, provider: str) -> Path:
    with path.open("w") as out:
        for i in range(EVENTS_EACH):
            out.write(json.dumps(event(f"resident{i % 23}", "traffic.violation", f"2026-0{1 + i % 9}-1{i % 10}T08:00:00Z",
                                       i, provider=provider)) + "\n")
    return path


def _json(done: subprocess.CompletedProcess) -> dict:
    assert done.returncode == 0, (done.args, done.stderr)
    return json.loads(done.stdout)


def test_eight_ingests_at_once_wait_their_turn_and_all_succeed(make_registry, database_url, tmp_path):
    registry = make_registry()
    env = clean_env()
    url = database_url
    keyed = ("--key-file", str(tmp_path / "registry.key"))
    files = [_events_file(tmp_path / f"events{n}.jsonl", f"provider{n}") for n in range(INGESTS)]

    with holding_the_write_lock(url):
        writers = [Running(url, *keyed, "ingest", str(f), "--json", env=env) for f in files]
        writers += [Running(url, *keyed, "rebuild", env=env), Running(url, *keyed, "policy", "activate", "rongcheng",
                                                                      env=env)]
        others = [Running(url, *keyed, "check", "bystander", "finance.loan", "--json", env=env) for _ in range(2)]
        others += [Running(url, *keyed, "standing", "resident1", "--json", env=env) for _ in range(2)]
        if registry.store.db.backend == "sqlite":
            _until(lambda: all(w.said(WAITING) for w in writers), 60, "every writer saying it waits")
        else:
            _until(lambda: _waiting_on_postgres(url) >= len(writers), 60, "every writer waiting for the lock")
        # Readers answer while a writer holds the lock, from the ledger as it was.
        assert _json(Running(url, "root", "--json", env=env).wait())["size"] == 1
        assert _json(Running(url, "verify", "--json", env=env).wait())["ok"] is True
        assert all(w.process.poll() is None for w in writers)  # no writer got past the lock

    results = [w.wait() for w in writers + others]
    assert [r.returncode for r in results] == [0] * len(results), [(r.args, r.stderr) for r in results]
    for ingested in results[:INGESTS]:
        assert json.loads(ingested.stdout)["accepted"] == EVENTS_EACH

    size = 1 + INGESTS * EVENTS_EACH + 1  # the first policy, every event, the second activation
    with registry.store.db.read() as tx:
        count, first, last = tx.one("SELECT count(*), min(seq), max(seq) FROM entries")
        per_provider = dict(tx.all("SELECT provider, count(DISTINCT key) FROM entries WHERE provider IS NOT NULL "
                                   "GROUP BY provider"))
    assert (count, first, last) == (size, 0, size - 1)  # gapless
    assert per_provider == {f"provider{n}": EVENTS_EACH for n in range(INGESTS)}  # each event once
    assert registry.verify().ok is True and registry.root().size == size
    for checked in results[INGESTS + 2 : INGESTS + 4]:
        assert registry.replay(json.loads(checked.stdout)["decision_id"]).same is True
    assert len(registry.store.audit.query(action="standing", limit=100)) == 2  # both reads recorded
    registry.view.sync()
    _assert_materialized_equals_fold(registry, [registry.pseudonym(f"resident{i}") for i in range(23)])


def test_a_writer_that_waits_too_long_ends_in_one_line_while_readers_go_on(make_registry, database_url, tmp_path):
    registry = make_registry()
    url = database_url
    keyed = ("--key-file", str(tmp_path / "registry.key"))
    events = _events_file(tmp_path / "events.jsonl", "police")
    impatient = clean_env(SOCIALCREDIT_LOCK_TIMEOUT="1")
    sqlite = registry.store.db.backend == "sqlite"

    with holding_the_write_lock(url):
        started = time.monotonic()
        ingest = Running(url, *keyed, "ingest", str(events), env=impatient)
        check = Running(url, *keyed, "check", "bystander", "finance.loan", env=impatient)
        standing = Running(url, *keyed, "standing", "resident1", "--json", env=clean_env())  # the default wait
        # On SQLite a check's decision log waits for the writer too; on PostgreSQL it takes no
        # append lock, and the check is answered at once.
        failed = [ingest.wait(), check.wait()] if sqlite else [ingest.wait()]
        assert _json(Running(url, "root", "--json", env=clean_env()).wait())["size"] == 1
        if sqlite:  # a read is recorded in the audit log: on SQLite that waits for the writer too
            assert standing.process.poll() is None
        else:
            assert check.wait().returncode == 0
    held_s = time.monotonic() - started

    assert held_s < 15  # the impatient ones gave up after about their 1 s, not the default 60
    limit = ("another process has held the write lock for 1 s; try again later (SOCIALCREDIT_LOCK_TIMEOUT sets how "
             "long to wait)" if sqlite else "another process has held the append lock for 1 s; try again later")
    for done in failed:
        assert done.returncode == 2
        # SQLite reports the wait as it goes (PostgreSQL waits inside the server, silently).
        assert done.stderr.splitlines() == [WAITING] * sqlite + [f"error: {registry.store.where}: {limit}"], done.stderr
    read = standing.wait()
    assert _json(read)["entries"] == 0
    assert read.stderr.splitlines() == [WAITING] * sqlite
    assert registry.size() == 1
    assert len(registry.store.audit.query(action="decision", limit=10)) == (0 if sqlite else 1)
