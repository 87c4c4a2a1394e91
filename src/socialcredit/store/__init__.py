"""Storage: one schema on SQLite (the default) and PostgreSQL (the scale-up).

`Store.open(url)` gives the tables of one registry over one `Database`:

    store.ledger      entries and checkpoints (append-only)
    store.standings   materialized standings (derived, rebuildable)
    store.decisions   the decision log
    store.audit       the audit log
    store.log_heads   each log's head (its hash chain's last link)
    store.meta        what this database is (format, key fingerprint)

Nothing in this package knows a rule, a rating or a policy; it stores and finds rows.
"""

from __future__ import annotations

from . import schema
from .database import Database, ReadOnly, StoreError, Tx, Waiter
from .derived import (AuditRow, AuditTable, DecisionRow, DecisionsTable, FoldStateRow, FoldStatesTable, LogHeads,
                      MetaTable, StandingRow, StandingsTable)
from .ledger import Checkpoint, EntryRow, LedgerTables, PolicyActivation, TreeReader, entry_row
from .urls import DatabaseURL, parse_url


class Store:
    def __init__(self, db: Database):
        self.db = db
        self.ledger = LedgerTables(db)
        self.standings = StandingsTable(db)
        self.fold_states = FoldStatesTable(db)
        self.decisions = DecisionsTable(db)
        self.audit = AuditTable(db)
        self.log_heads = LogHeads(db)
        self.meta = MetaTable(db)

    @classmethod
    def open(cls, url: str, *, lock_timeout_s: float | None = None, on_wait: Waiter | None = None) -> "Store":
        """Open an existing registry (migrating an older schema first)."""
        db = Database.open(url, lock_timeout_s=lock_timeout_s, on_wait=on_wait)
        try:
            schema.check(db)
        except BaseException:
            db.close()
            raise
        return cls(db)

    @classmethod
    def create(cls, url: str, meta: dict[str, str]) -> "Store":
        """Create a registry's schema in an empty database."""
        db = Database.open(url, create=True)
        try:
            schema.create(db, meta)
        except BaseException:
            db.close()
            raise
        return cls(db)

    @property
    def where(self) -> str:
        return self.db.where

    def close(self) -> None:
        self.db.close()


__all__ = [
    "AuditRow",
    "Checkpoint",
    "Database",
    "DatabaseURL",
    "DecisionRow",
    "EntryRow",
    "FoldStateRow",
    "PolicyActivation",
    "ReadOnly",
    "StandingRow",
    "Store",
    "StoreError",
    "TreeReader",
    "Tx",
    "entry_row",
    "parse_url",
]
