"""The audit log: every read of a subject's record and every decision, with who and why.

A read is recorded in its own short write transaction; a decision in the same transaction
as the decision itself (decisions.py), so neither exists without the other.
"""

from __future__ import annotations

import json

from ..errors import InvalidInput, excerpt
from ..instants import format_instant, now_us
from ..ledger.entries import canonical_json
from ..results import AuditLog, AuditRecord
from ..store import AuditRow, Store, Tx
from .caller import Caller


MAX_LIMIT = 100_000  # records per query: a page, not the whole log at once


def audit_row(caller: Caller, action: str, subject: str | None, detail: dict, at_us: int | None = None,
              purpose: str | None = None) -> AuditRow:
    return AuditRow(now_us() if at_us is None else at_us, caller.principal, caller.role, action, subject,
                    caller.purpose if purpose is None else purpose, canonical_json(detail))


class AuditTrail:
    def __init__(self, store: Store):
        self._store = store
        self.unrecorded = 0  # reads not recorded: the database cannot be written (a read-only copy)

    def record(self, caller: Caller, action: str, subject: str | None, detail: dict, tx: Tx | None = None) -> None:
        if tx is None and not self._store.db.writable:
            # An auditor's read-only copy: the read goes on; the caller learns from
            # `unrecorded` that it is not in this copy's audit log (the CLI says so).
            self.unrecorded += 1
            return
        row = audit_row(caller, action, subject, detail)
        if tx is not None:
            self._store.audit.insert(tx, [row])
            return
        with self._store.db.write() as own:
            self._store.audit.insert(own, [row])

    def query(self, caller: Caller, *, subject: str | None = None, principal: str | None = None,
              action: str | None = None, since_us: int | None = None, until_us: int | None = None,
              limit: int = 100) -> AuditLog:
        """The newest records first; this read is recorded too."""
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be between 1 and {MAX_LIMIT:,}, got {excerpt(limit)}")
        for name, value in (("principal", principal), ("action", action)):
            if value is not None and (len(value) > 200 or not value.isprintable()):
                raise InvalidInput(f"{name} {excerpt(value)} is not a name the audit log can hold")
        rows = self._store.audit.query(subject=subject, principal=principal, action=action, since_us=since_us,
                                       until_us=until_us, limit=limit)
        filters = {"limit": limit, "principal": principal, "action": action}
        self.record(caller, "audit", subject, {k: v for k, v in filters.items() if v is not None})
        return AuditLog(subject, [AuditRecord(format_instant(r.at_us), r.principal, r.action, r.subject,
                                              json.loads(r.detail), r.role, r.purpose) for r in rows])
