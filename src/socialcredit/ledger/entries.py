"""What a ledger entry is, and its canonical bytes (the Merkle leaf).

An entry is immutable once written. Its canonical form is JSON with sorted keys and no
spaces, UTF-8; the leaf hash is SHA-256(0x00 || canonical bytes) as RFC 9162 says, so the
tree covers every field, including the sequence number and the time it was recorded.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring
from typing import Any, NamedTuple

from ..instants import format_instant, parse_stored_instant

EVENT = "event"
VOID = "void"
POLICY = "policy"
KEY = "key"  # anchors the pseudonym key's fingerprint (a registry from before entry #0 carried it)
KINDS = (EVENT, VOID, POLICY, KEY)


_EVENT_TEMPLATE = (
    '{"attributes":%s,"key":%s,"kind":"event","occurred_at":"%s","provider":%s,'
    '"recorded_at":"%s","seq":%d,"subject":%s,"subject_kind":%s,"type":%s}'
)
_string = encode_basestring  # JSON string literal, as json.dumps(ensure_ascii=False) writes it


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, UTF-8 text: the one serialization that is hashed."""
    return _ENCODER.encode(value)


def attributes_json(attributes: dict) -> str:
    """`canonical_json` of a validated attribute dict, built directly (the ingest hot path).

    Validated attributes are flat: identifier keys and str/int/float/bool values, which
    json.dumps writes exactly as below (a property test holds the two together).
    """
    if not attributes:
        return "{}"
    parts = []
    for name in sorted(attributes):
        value = attributes[name]
        kind = value.__class__
        if kind is str:
            text = _string(value)
        elif kind is bool:
            text = "true" if value else "false"
        elif kind is int:
            text = int.__repr__(value)
        elif kind is float:
            text = float.__repr__(value)
        else:
            return canonical_json(attributes)
        parts.append(f'"{name}":{text}')
    return "{" + ",".join(parts) + "}"


class Entry(NamedTuple):
    """One ledger entry, as the fold and the rest of the code see it.

    A named tuple: immutable, and cheap to make by the hundred thousand at ingest.
    """

    seq: int
    kind: str
    recorded_us: int
    subject: str | None = None
    subject_kind: str | None = None
    type: str | None = None
    occurred_us: int | None = None
    provider: str | None = None
    key: str | None = None
    attributes: dict = {}  # never mutated; a shared empty default is safe here
    # void: the entry it cancels and why; policy: the document it activates
    target: int | None = None
    reason: str | None = None
    policy: dict | None = None
    # the canonical JSON of `attributes`, when the caller already has it (ingest does)
    attributes_json: str | None = None
    # what the registry itself fixed at ingest (a rating's weight and why), hashed with the rest
    derived: dict | None = None
    # the pseudonym key's fingerprint, anchored in the ledger: in entry #0 (a policy) or a key entry
    key_fingerprint: str | None = None

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
            if self.derived is not None:
                body["derived"] = self.derived
        elif self.kind == VOID:
            body.update(subject=self.subject, target=self.target, reason=self.reason)
        elif self.kind == POLICY:
            body.update(policy=self.policy)
        if self.key_fingerprint is not None:
            body["key_fingerprint"] = self.key_fingerprint
        return body

    def canonical(self, recorded_at: str | None = None) -> str:
        """`canonical_json(self.body())`, built directly for events (the ingest hot path).

        The template lists the keys in sorted order, exactly as json.dumps(sort_keys=True)
        would; a property test holds the two together. `recorded_at` may be passed in
        already formatted, since a whole batch shares it.
        """
        if self.kind != EVENT or self.derived is not None:
            return canonical_json(self.body())
        return _EVENT_TEMPLATE % (
            self.attributes_json or (canonical_json(self.attributes) if self.attributes else "{}"),
            _string(self.key),
            format_instant(self.occurred_us),
            _string(self.provider),
            recorded_at or format_instant(self.recorded_us),
            self.seq,
            _string(self.subject),
            _string(self.subject_kind),
            _string(self.type),
        )

    @classmethod
    def from_body(cls, body: dict) -> "Entry":
        kind = body["kind"]
        common = dict(seq=body["seq"], kind=kind, recorded_us=parse_stored_instant(body["recorded_at"]))
        if kind == EVENT:
            return cls(
                **common,
                subject=body["subject"],
                subject_kind=body["subject_kind"],
                type=body["type"],
                occurred_us=parse_stored_instant(body["occurred_at"]),
                provider=body["provider"],
                key=body["key"],
                attributes=body["attributes"],
                derived=body.get("derived"),
            )
        if kind == VOID:
            return cls(**common, subject=body["subject"], target=body["target"], reason=body["reason"])
        return cls(**common, policy=body.get("policy"), key_fingerprint=body.get("key_fingerprint"))


def event_content(subject: str, subject_kind: str, event_type: str, occurred_us: int, attributes_json: str) -> tuple:
    """What a provider said, without where the registry put it: the idempotency comparison.

    Two submissions with the same (provider, key) are the same event only if these match.
    """
    return (subject, subject_kind, event_type, occurred_us, attributes_json)


def stored_event_content(body: str) -> tuple:
    data = json.loads(body)
    return event_content(data["subject"], data["subject_kind"], data["type"],
                         parse_stored_instant(data["occurred_at"]),
                         canonical_json(data["attributes"]) if data["attributes"] else "{}")
