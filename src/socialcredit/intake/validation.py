"""The ingest boundary: validate each event against the policy, pseudonymize its subject.

Nothing here writes. Every line comes out either as a `ValidEvent` (the subject already
replaced by its pseudonym, the attributes checked against the policy's catalog) or as an
error naming the line and the cause, so the registry can refuse a whole file before a single
row is written.
"""

from __future__ import annotations

from typing import NamedTuple

from ..instants import TimeFormatError, parse_instant
from ..ledger.entries import attributes_json as _encode
from ..policy.compiled import EventError, Policy
from .identity import IdentityError, Pseudonymizer
from .readers import FIELDS, REQUIRED, InputError

_FIELD_SET = frozenset(FIELDS)
# What the registry computes and records itself; a provider may not send these.
REGISTRY_EVENTS = frozenset({"peer.trust", "peer.collusion_flag"})
REGISTRY_PROVIDER = "socialcredit"
KINDS = ("person", "organization")
MAX_KEY = 200


class ValidEvent(NamedTuple):
    line: int | None
    subject: str  # the pseudonym: the raw reference goes no further than this module
    subject_kind: str
    type: str
    occurred_us: int
    provider: str
    key: str
    attributes: dict
    attributes_json: str

    def content(self) -> tuple:
        return (self.subject, self.subject_kind, self.type, self.occurred_us, self.attributes_json)


class Validator:
    """Turns raw event dicts into ValidEvents under one policy and one pseudonym key."""

    def __init__(self, policy: Policy, pseudonymizer: Pseudonymizer, default_provider: str | None = None):
        self.policy = policy
        self.pseudonymizer = pseudonymizer
        self.default_provider = default_provider

    def validate(self, raw: dict, line: int | None = None) -> ValidEvent:
        try:
            return self._validate(raw, line)
        except (EventError, IdentityError, TimeFormatError) as exc:
            raise InputError(line, str(exc)) from None

    def _validate(self, raw: dict, line: int | None) -> ValidEvent:
        # The common case runs straight through; each check names its field when it fails.
        if not _FIELD_SET.issuperset(raw):
            name = next(n for n in raw if n not in _FIELD_SET)
            raise InputError(line, f"unknown field {name!r} (fields: {', '.join(FIELDS)})")
        subject = raw.get("subject")
        event_type = raw.get("type")
        occurred_text = raw.get("occurred_at")
        key = raw.get("key")
        if not subject or not event_type or not occurred_text or key is None or key == "":
            missing = next(n for n in REQUIRED if raw.get(n) in (None, ""))
            raise InputError(line, f"missing {missing!r}")
        if subject.__class__ is not str:
            raise InputError(line, "subject must be text")
        if event_type.__class__ is not str:
            raise InputError(line, "type must be text")
        if key.__class__ is not str:
            if key.__class__ is not int:
                raise InputError(line, f"key must be text of at most {MAX_KEY} characters")
            key = str(key)
        if len(key) > MAX_KEY:
            raise InputError(line, f"key must be text of at most {MAX_KEY} characters")
        kind = raw.get("subject_kind") or "person"
        if kind != "person" and kind != "organization":
            raise InputError(line, f"subject_kind must be person or organization, got {kind!r}")
        provider = raw.get("provider") or self.default_provider
        if provider is None:
            raise InputError(line, "missing 'provider' (give it in the event or with --provider)")
        if provider.__class__ is not str or len(provider) > MAX_KEY:
            raise InputError(line, "provider must be text")
        if self.default_provider is not None and provider != self.default_provider:
            raise InputError(line, f"provider {provider!r} differs from --provider {self.default_provider!r}")
        try:
            occurred = parse_instant(occurred_text)
        except TimeFormatError as exc:
            raise InputError(line, f"occurred_at: {exc}") from None
        if provider != REGISTRY_PROVIDER and event_type in REGISTRY_EVENTS:
            raise InputError(line, f"{event_type} is recorded by the registry itself (`socialcredit trust`), "
                                   "not by a provider")
        attributes = self.policy.validate_event(event_type, raw.get("attributes"), kind)
        references = self.policy.reference_attributes[event_type]
        if references:
            for name, referenced_kind in references:
                if name in attributes:  # a rater: stored as a pseudonym, like every subject
                    attributes[name] = self.pseudonymizer.pseudonym(attributes[name], referenced_kind)
        attributes_json = _encode(attributes)
        return ValidEvent(
            line,
            self.pseudonymizer.pseudonym(subject, kind),
            kind,
            event_type,
            occurred,
            provider,
            key,
            attributes,
            attributes_json,
        )
