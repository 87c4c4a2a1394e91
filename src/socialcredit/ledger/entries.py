"""What a ledger entry is, and its canonical bytes (the Merkle leaf).

An entry is immutable once written. Its canonical form is JSON with sorted keys and no
spaces, UTF-8; the leaf hash is SHA-256(0x00 || canonical bytes) as RFC 9162 says, so the
tree covers every field, including the sequence number and the time it was recorded.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from .._time import format_instant, parse_instant

EVENT = "event"
VOID = "void"
POLICY = "policy"
KINDS = (EVENT, VOID, POLICY)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True, slots=True)
class Entry:
    """One ledger entry, as the fold and the rest of the code see it."""

    seq: int
    kind: str
    recorded_us: int
    subject: str | None = None
    subject_kind: str | None = None
    type: str | None = None
    occurred_us: int | None = None
    provider: str | None = None
    key: str | None = None
    attributes: dict = field(default_factory=dict)
    # void: the entry it cancels and why; policy: the document it activates
    target: int | None = None
    reason: str | None = None
    policy: dict | None = None

    def body(self) -> dict:
        """The canonical dict: exactly the fields that are hashed."""
        body: dict[str, Any] = {
            "seq": self.seq,
            "kind": self.kind,
            "recorded_at": format_instant(self.recorded_us),
        }
        if self.kind == EVENT:
            body.update(
                subject=self.subject,
                subject_kind=self.subject_kind,
                type=self.type,
                occurred_at=format_instant(self.occurred_us),
                provider=self.provider,
                key=self.key,
                attributes=self.attributes,
            )
        elif self.kind == VOID:
            body.update(subject=self.subject, target=self.target, reason=self.reason)
        else:
            body.update(policy=self.policy)
        return body

    def canonical(self) -> str:
        return canonical_json(self.body())

    @classmethod
    def from_body(cls, body: dict) -> "Entry":
        kind = body["kind"]
        common = dict(seq=body["seq"], kind=kind, recorded_us=parse_instant(body["recorded_at"]))
        if kind == EVENT:
            return cls(
                **common,
                subject=body["subject"],
                subject_kind=body["subject_kind"],
                type=body["type"],
                occurred_us=parse_instant(body["occurred_at"]),
                provider=body["provider"],
                key=body["key"],
                attributes=body["attributes"],
            )
        if kind == VOID:
            return cls(**common, subject=body["subject"], target=body["target"], reason=body["reason"])
        return cls(**common, policy=body["policy"])


def event_digest(subject: str, subject_kind: str, event_type: str, occurred_us: int, attributes: dict) -> str:
    """What a provider said, without where the registry put it: the idempotency fingerprint.

    Two submissions with the same (provider, key) are the same event only if this matches.
    """
    text = canonical_json([subject, subject_kind, event_type, occurred_us, attributes])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
