"""Hash chains over the decision log and the audit log.

The ledger's Merkle tree covers what the registry was told; the two logs record what it
answered and who read what. Each log is a hash chain: every row stores its position (`seq`:
0, 1, 2, …) and its chain hash

    chain[-1] = SHA-256("socialcredit:<log>:v1")           the log's genesis
    chain[n]  = SHA-256(chain[n - 1] || canonical(row n))

where canonical(row) is the canonical JSON (sorted keys, no spaces, UTF-8; here an array,
so no keys) of the row's columns in the order of `DECISION_FIELDS` / `AUDIT_FIELDS`. The
position itself is not hashed: positions must run 0, 1, 2, … with no gap, and the chain
fixes the order. The log's head is (count, chain[count - 1]); the registry keeps it in
`log_heads` and writes it into every ledger checkpoint, and `root --publish` puts it in the
tree head it publishes. A chain of one SHA-256 per row is cheap enough for the decision path.

An auditor can recompute every chain from the rows with any SHA-256 and JSON library.
"""

from __future__ import annotations

from hashlib import sha256
from typing import NamedTuple

from .entries import canonical_json

DECISIONS = "decisions"
AUDIT = "audit"
LOGS = (DECISIONS, AUDIT)

DECISION_FIELDS = ("id", "subject", "service", "at_us", "policy_digest", "ledger_size", "allowed", "effect",
                   "measures", "recorded_us", "principal", "role", "purpose")
AUDIT_FIELDS = ("at_us", "principal", "role", "action", "subject", "purpose", "detail")


def genesis(log: str) -> bytes:
    """The chain hash 'before' a log's first row; a log's own, so rows of one log cannot pass for the other's."""
    return sha256(f"socialcredit:{log}:v1".encode()).digest()


def link(previous: bytes, values: tuple | list) -> bytes:
    """The chain hash of a row (a tuple of its column values, in the log's field order) after `previous`."""
    return sha256(previous + canonical_json(values).encode("utf-8")).digest()


class LogRow(NamedTuple):
    """A stored row of a chained log, as `verify` reads it."""

    seq: int | None  # position in the log (None: a row the registry did not write)
    name: str | None  # the decision's id (audit records have none)
    values: tuple  # the hashed columns, in the log's field order
    chain: bytes | None
