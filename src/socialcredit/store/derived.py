"""Derived and log tables: materialized standings, the decision log, the audit log, meta.

Standings can be thrown away and rebuilt from the ledger and the policy; the two logs are
append-only records of what the registry answered and who read what, each a hash chain
(ledger/chains.py): an insert numbers its rows after the log's head, hashes each onto the
one before, and moves the head in `log_heads`, all in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from ..errors import Tampered
from ..ledger import chains
from ..ledger.chains import LogRow
from .database import Database, Tx
from .urls import POSTGRESQL


class StandingRow(NamedTuple):
    subject: str
    policy_digest: str
    known_size: int
    valid_from_us: int | None
    valid_until_us: int | None
    cacheable: bool
    score: float
    tier: str | None
    body: str  # the compact standing as canonical JSON (scoring.compact)


class DecisionRow(NamedTuple):
    id: str
    subject: str
    service: str
    at_us: int
    policy_digest: str
    ledger_size: int
    allowed: bool
    effect: str
    measures: str  # the ids of the measures that applied, comma-separated
    recorded_us: int
    principal: str
    role: str | None = None
    purpose: str | None = None  # the caller's own words, if any (the service is the decision's purpose)


class AuditRow(NamedTuple):
    at_us: int
    principal: str
    role: str | None
    action: str
    subject: str | None
    purpose: str | None
    detail: str  # canonical JSON


_STANDING_COLUMNS = ("subject, policy_digest, known_size, valid_from_us, valid_until_us, cacheable, score, tier, "
                     "body")
_DECISION_COLUMNS = ", ".join(chains.DECISION_FIELDS)  # DecisionRow's fields, in the order they are hashed
_AUDIT_COLUMNS = ", ".join(chains.AUDIT_FIELDS)  # AuditRow's
_LOG_BATCH = 10_000


class FoldStateRow(NamedTuple):
    subject: str
    policy_digest: str
    known_size: int
    body: str  # scoring.incremental.FoldState as JSON


class FoldStatesTable:
    """Each subject's incremental fold state: derived, rebuildable, thrown away by `rebuild`."""

    def __init__(self, db: Database):
        self.db = db

    def get_many(self, tx: Tx, subjects: Sequence[str]) -> dict[str, FoldStateRow]:
        found: dict[str, FoldStateRow] = {}
        for start in range(0, len(subjects), 500):
            chunk = subjects[start : start + 500]
            for row in tx.all(f"SELECT subject, policy_digest, known_size, body FROM fold_states WHERE subject IN "
                              f"({tx.marks(len(chunk))})", list(chunk)):
                found[row[0]] = FoldStateRow(*row)
        return found

    def put(self, tx: Tx, rows: Sequence[FoldStateRow]) -> None:
        tx.executemany(
            "INSERT INTO fold_states (subject, policy_digest, known_size, body) VALUES (?,?,?,?) "
            "ON CONFLICT (subject) DO UPDATE SET policy_digest = excluded.policy_digest, "
            "known_size = excluded.known_size, body = excluded.body", rows)

    def delete(self, tx: Tx, subjects: Sequence[str]) -> None:
        tx.executemany("DELETE FROM fold_states WHERE subject = ?", [(s,) for s in subjects])

    def clear(self, tx: Tx) -> None:
        tx.execute("DELETE FROM fold_states")


class StandingsTable:
    def __init__(self, db: Database):
        self.db = db

    def put(self, tx: Tx, rows: Sequence[StandingRow]) -> None:
        """Insert or replace each subject's materialized standing."""
        tx.executemany(
            f"INSERT INTO standings ({_STANDING_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (subject) DO UPDATE SET policy_digest = excluded.policy_digest, "
            "known_size = excluded.known_size, valid_from_us = excluded.valid_from_us, "
            "valid_until_us = excluded.valid_until_us, cacheable = excluded.cacheable, "
            "score = excluded.score, tier = excluded.tier, body = excluded.body",
            rows,
        )

    def clear(self, tx: Tx) -> None:
        tx.execute("DELETE FROM standings")

    def get(self, subject: str) -> StandingRow | None:
        with self.db.read() as t:
            row = t.one(f"SELECT {_STANDING_COLUMNS} FROM standings WHERE subject = ?", (subject,))
        return None if row is None else StandingRow(*row[:5], bool(row[5]), *row[6:])

    def rows(self, batch: int = 10_000) -> Iterator[StandingRow]:
        last = ""
        while True:
            with self.db.read() as t:
                rows = t.all(f"SELECT {_STANDING_COLUMNS} FROM standings WHERE subject > ? ORDER BY subject LIMIT ?",
                             (last, batch))
            if not rows:
                return
            for row in rows:
                yield StandingRow(*row[:5], bool(row[5]), *row[6:])
            last = rows[-1][0]

    def tier_counts(self) -> dict[str | None, int]:
        with self.db.read() as t:
            return {tier: count for tier, count in t.all("SELECT tier, count(*) FROM standings GROUP BY tier")}

    def count(self) -> int:
        with self.db.read() as t:
            return t.scalar("SELECT count(*) FROM standings")


class DecisionsTable:
    def __init__(self, db: Database):
        self.db = db

    def insert(self, tx: Tx, rows: Sequence[DecisionRow]) -> None:
        """Append decisions to the log's hash chain (one SHA-256 each)."""
        _append_chained(self.db, tx, chains.DECISIONS, "decisions", _DECISION_COLUMNS, rows)

    def get(self, decision_id: str) -> DecisionRow | None:
        with self.db.read() as t:
            row = t.one(f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE id = ?", (decision_id,))
        return None if row is None else _decision(row)

    def chained(self) -> Iterator[LogRow]:
        """Every row, for `verify`: those with no position first, then in chain order."""
        for seq, values, chain in _chained_rows(self.db, "decisions", _DECISION_COLUMNS):
            row = _decision(values)
            yield LogRow(seq, row.id, row, chain)

    def count(self) -> int:
        with self.db.read() as t:
            return t.scalar("SELECT count(*) FROM decisions")


class AuditTable:
    """Reads and other audited actions; decisions are audit records too, kept in the decision
    log (written once, not twice) and merged into every query here."""

    def __init__(self, db: Database):
        self.db = db

    def insert(self, tx: Tx, rows: Sequence[AuditRow]) -> None:
        """Append records to the audit log's hash chain."""
        _append_chained(self.db, tx, chains.AUDIT, "audit", _AUDIT_COLUMNS, rows)

    def chained(self) -> Iterator[LogRow]:
        """Every record, for `verify`: those with no position first, then in chain order."""
        for seq, values, chain in _chained_rows(self.db, "audit", _AUDIT_COLUMNS):
            yield LogRow(seq, None, AuditRow(*values), chain)

    def count(self) -> int:
        with self.db.read() as t:
            return t.scalar("SELECT count(*) FROM audit")

    def query(self, *, subject: str | None = None, principal: str | None = None, action: str | None = None,
              since_us: int | None = None, until_us: int | None = None, limit: int = 100) -> list[AuditRow]:
        """The newest records first, filtered by any of subject, principal, action and time."""
        rows: list[AuditRow] = []
        with self.db.read() as t:
            if action != "decision":
                where, params = _filters(subject=subject, principal=principal, action=action, since_us=since_us,
                                         until_us=until_us, time="at_us")
                rows += [AuditRow(*row) for row in t.all(
                    f"SELECT {_AUDIT_COLUMNS} FROM audit{where} ORDER BY id DESC LIMIT ?", [*params, limit])]
            if action in (None, "decision"):
                where, params = _filters(subject=subject, principal=principal, since_us=since_us, until_us=until_us,
                                         time="recorded_us")
                for row in t.all("SELECT recorded_us, principal, role, subject, service, purpose, id, allowed, effect "
                                 f"FROM decisions{where} ORDER BY recorded_us DESC, id DESC LIMIT ?", [*params, limit]):
                    recorded, who, role, subj, service, purpose, decision_id, allowed, effect = row
                    detail = (f'{{"allowed":{"true" if allowed else "false"},"decision_id":"{decision_id}",'
                              f'"effect":"{effect}","service":"{service}"}}')
                    rows.append(AuditRow(recorded, who, role, "decision", subj, purpose or service, detail))
        rows.sort(key=lambda r: r.at_us, reverse=True)  # stable: within a table, newest first already
        return rows[:limit]


def _decision(row) -> DecisionRow:
    return DecisionRow(*row[:6], bool(row[6]), *row[7:])  # SQLite stores booleans as 0 and 1


def _append_chained(db: Database, tx: Tx, log: str, table: str, columns: str, rows: Sequence[tuple]) -> None:
    """Insert `rows` (tuples of `columns`) after the log's head, each with its position and
    chain hash, and move the head: the caller's transaction holds the log until it commits."""
    if not rows:
        return
    # SQLite's writer already holds the database's write lock; on PostgreSQL the head's row
    # lock makes a second process wait for this one's commit and then read its new head.
    lock = " FOR UPDATE" if db.backend == POSTGRESQL else ""
    found = tx.one(f"SELECT size, head FROM log_heads WHERE log = ?{lock}", (log,))
    if found is None:
        raise Tampered(f"the {table} log has no head in log_heads (deleted behind the registry's back); "
                       "run `socialcredit verify`")
    size, head = found[0], bytes(found[1])
    link = chains.link
    chained = []
    for row in rows:
        head = link(head, row)
        chained.append((*row, size, head))
        size += 1
    marks = ",".join(["?"] * (len(rows[0]) + 2))
    tx.executemany(f"INSERT INTO {table} ({columns}, seq, chain) VALUES ({marks})", chained)
    tx.execute("UPDATE log_heads SET size = ?, head = ? WHERE log = ?", (size, head, log))


def _chained_rows(db: Database, table: str, columns: str) -> Iterator[tuple[int | None, tuple, bytes | None]]:
    """(seq, the hashed columns, chain) of every row: unnumbered ones (which the registry never
    writes) first, then by seq, a batch at a time."""
    with db.read() as t:
        for row in t.all(f"SELECT {columns}, chain FROM {table} WHERE seq IS NULL"):
            yield None, row[:-1], _bytes(row[-1])
    last = None  # no lower bound at first: a negative seq (never the registry's) is read too
    while True:
        with db.read() as t:
            after = "seq IS NOT NULL" if last is None else "seq > ?"
            rows = t.all(f"SELECT seq, {columns}, chain FROM {table} WHERE {after} ORDER BY seq LIMIT ?",
                         (_LOG_BATCH,) if last is None else (last, _LOG_BATCH))
        if not rows:
            return
        for row in rows:
            yield row[0], row[1:-1], _bytes(row[-1])
        last = rows[-1][0]


def _bytes(value) -> bytes | None:
    return None if value is None else bytes(value)  # psycopg gives memoryview


def _filters(*, time: str, subject=None, principal=None, action=None, since_us=None, until_us=None):
    where, params = [], []
    for column, value in (("subject", subject), ("principal", principal), ("action", action)):
        if value is not None:
            where.append(f"{column} = ?")
            params.append(value)
    if since_us is not None:
        where.append(f"{time} >= ?")
        params.append(since_us)
    if until_us is not None:
        where.append(f"{time} < ?")
        params.append(until_us)
    return (f" WHERE {' AND '.join(where)}" if where else ""), params


class LogHeads:
    """Each log's head: (rows, the chain hash of the last), moved by every insert into the log."""

    def __init__(self, db: Database):
        self.db = db

    def all(self, tx: Tx | None = None) -> dict[str, tuple[int, bytes]]:
        with self.db.reading(tx) as t:
            return {log: (size, bytes(head)) for log, size, head in t.all("SELECT log, size, head FROM log_heads")}


class MetaTable:
    def __init__(self, db: Database):
        self.db = db

    def all(self) -> dict[str, str]:
        with self.db.read() as t:
            return dict(t.all("SELECT name, value FROM meta"))

    def get(self, name: str) -> str | None:
        with self.db.read() as t:
            return t.scalar("SELECT value FROM meta WHERE name = ?", (name,))

    def set(self, tx: Tx, name: str, value: str) -> None:
        tx.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (name, value))

    def put(self, tx: Tx, name: str, value: str) -> None:
        """Set `name`, replacing what it held (derived values: a policy's snapshot)."""
        tx.execute("INSERT INTO meta (name, value) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value",
                   (name, value))
