"""Derived and log tables: materialized standings, the decision log, the audit log, meta.

Standings can be thrown away and rebuilt from the ledger and the policy; the two logs are
append-only records of what the registry answered and who read what.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple

from .database import Database, Tx


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
_DECISION_COLUMNS = ("id, subject, service, at_us, policy_digest, ledger_size, allowed, effect, measures, "
                     "recorded_us, principal, role, purpose")
_AUDIT_COLUMNS = "at_us, principal, role, action, subject, purpose, detail"


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
        tx.executemany(f"INSERT INTO decisions ({_DECISION_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)

    def get(self, decision_id: str) -> DecisionRow | None:
        with self.db.read() as t:
            row = t.one(f"SELECT {_DECISION_COLUMNS} FROM decisions WHERE id = ?", (decision_id,))
        return None if row is None else DecisionRow(*row[:6], bool(row[6]), *row[7:])


class AuditTable:
    """Reads and other audited actions; decisions are audit records too, kept in the decision
    log (written once, not twice) and merged into every query here."""

    def __init__(self, db: Database):
        self.db = db

    def insert(self, tx: Tx, rows: Sequence[AuditRow]) -> None:
        tx.executemany(f"INSERT INTO audit ({_AUDIT_COLUMNS}) VALUES (?,?,?,?,?,?,?)", rows)

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


class MetaTable:
    def __init__(self, db: Database):
        self.db = db

    def all(self) -> dict[str, str]:
        with self.db.read() as t:
            return dict(t.all("SELECT name, value FROM meta"))

    def set(self, tx: Tx, name: str, value: str) -> None:
        tx.execute("INSERT INTO meta (name, value) VALUES (?, ?)", (name, value))
