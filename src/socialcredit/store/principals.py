"""The service's tables (migration 0006): principals, idempotency records, submissions.

Plain SQL over a `Database`, like the rest of the store: rows in, rows out. What a role may
do, how a key is checked and when a lease may be taken over is decided above (registry/).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

from .database import Database, Tx


class PrincipalRow(NamedTuple):
    name: str
    role: str
    grants: str  # JSON list
    subject: str | None
    key_id: str
    key_hash: str
    created_us: int
    created_by: str
    revoked_us: int | None
    revoked_by: str | None
    changed_us: int


class IdempotencyRow(NamedTuple):
    principal: str
    key: str
    fingerprint: str
    state: str  # pending | done
    owner: str
    lease_until_us: int
    status: int | None
    content_type: str | None
    response: str | None
    created_us: int
    completed_us: int | None


class SubmissionRow(NamedTuple):
    id: str
    principal: str
    recorded_us: int
    result: str


_PRINCIPAL_COLUMNS = ("name, role, grants, subject, key_id, key_hash, created_us, created_by, revoked_us, revoked_by, "
                      "changed_us")
_IDEMPOTENCY_COLUMNS = ("principal, key, fingerprint, state, owner, lease_until_us, status, content_type, response, "
                        "created_us, completed_us")


class PrincipalsTable:
    def __init__(self, db: Database):
        self.db = db

    def insert(self, tx: Tx, row: PrincipalRow) -> bool:
        """False if the name (or, astronomically unlikely, the key id) is taken."""
        cursor = tx.execute(f"INSERT INTO principals ({_PRINCIPAL_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                            "ON CONFLICT DO NOTHING", row)
        return cursor.rowcount == 1

    def get(self, name: str, tx: Tx | None = None) -> PrincipalRow | None:
        with self.db.reading(tx) as t:
            row = t.one(f"SELECT {_PRINCIPAL_COLUMNS} FROM principals WHERE name = ?", (name,))
        return None if row is None else PrincipalRow(*row)

    def by_key_id(self, key_id: str) -> PrincipalRow | None:
        with self.db.read() as t:
            row = t.one(f"SELECT {_PRINCIPAL_COLUMNS} FROM principals WHERE key_id = ?", (key_id,))
        return None if row is None else PrincipalRow(*row)

    def revoked_us(self, name: str) -> tuple[bool, int | None]:
        """(exists, revoked_us) of one principal: what a cached key is checked against."""
        with self.db.read() as t:
            row = t.one("SELECT revoked_us FROM principals WHERE name = ?", (name,))
        return (False, None) if row is None else (True, row[0])

    def revoke(self, tx: Tx, name: str, at_us: int, by: str) -> bool:
        cursor = tx.execute("UPDATE principals SET revoked_us = ?, revoked_by = ?, changed_us = ? "
                            "WHERE name = ? AND revoked_us IS NULL", (at_us, by, at_us, name))
        return cursor.rowcount == 1

    def all(self) -> list[PrincipalRow]:
        with self.db.read() as t:
            return [PrincipalRow(*row) for row in t.all(f"SELECT {_PRINCIPAL_COLUMNS} FROM principals ORDER BY name")]


class IdempotencyTable:
    def __init__(self, db: Database):
        self.db = db

    def get(self, tx: Tx, principal: str, key: str) -> IdempotencyRow | None:
        row = tx.one(f"SELECT {_IDEMPOTENCY_COLUMNS} FROM idempotency WHERE principal = ? AND key = ?",
                     (principal, key))
        return None if row is None else IdempotencyRow(*row)

    def claim(self, tx: Tx, principal: str, key: str, fingerprint: str, owner: str, lease_until_us: int,
              now: int) -> bool:
        """Insert a pending record; False if one is there already."""
        cursor = tx.execute(f"INSERT INTO idempotency ({_IDEMPOTENCY_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                            "ON CONFLICT DO NOTHING",
                            (principal, key, fingerprint, "pending", owner, lease_until_us, None, None, None, now,
                             None))
        return cursor.rowcount == 1

    def take_over(self, tx: Tx, principal: str, key: str, old_owner: str, owner: str, lease_until_us: int) -> bool:
        cursor = tx.execute("UPDATE idempotency SET owner = ?, lease_until_us = ? WHERE principal = ? AND key = ? "
                            "AND state = 'pending' AND owner = ?", (owner, lease_until_us, principal, key, old_owner))
        return cursor.rowcount == 1

    def complete_many(self, tx: Tx, completions: Sequence[Sequence], now: int) -> None:
        """Mark records done with their responses: (principal, key, owner, status, content_type,
        response) each, a record only while that owner holds it pending."""
        tx.executemany("UPDATE idempotency SET state = 'done', status = ?, content_type = ?, response = ?, "
                       "completed_us = ? WHERE principal = ? AND key = ? AND state = 'pending' AND owner = ?",
                       [(status, content_type, response, now, principal, key, owner)
                        for principal, key, owner, status, content_type, response in completions])

    def release(self, tx: Tx, principal: str, key: str, owner: str) -> None:
        tx.execute("DELETE FROM idempotency WHERE principal = ? AND key = ? AND state = 'pending' AND owner = ?",
                   (principal, key, owner))

    def expire(self, tx: Tx, before_us: int) -> int:
        cursor = tx.execute("DELETE FROM idempotency WHERE created_us < ?", (before_us,))
        return cursor.rowcount


class SubmissionsTable:
    def __init__(self, db: Database):
        self.db = db

    def insert(self, tx: Tx, row: SubmissionRow) -> None:
        tx.execute("INSERT INTO submissions (id, principal, recorded_us, result) VALUES (?,?,?,?)", row)

    def get(self, submission_id: str) -> SubmissionRow | None:
        with self.db.read() as t:
            row = t.one("SELECT id, principal, recorded_us, result FROM submissions WHERE id = ?", (submission_id,))
        return None if row is None else SubmissionRow(*row)

    def of(self, principal: str, limit: int) -> list[SubmissionRow]:
        with self.db.read() as t:
            return [SubmissionRow(*row) for row in t.all(
                "SELECT id, principal, recorded_us, result FROM submissions WHERE principal = ? "
                "ORDER BY recorded_us DESC, id DESC LIMIT ?", (principal, limit))]
