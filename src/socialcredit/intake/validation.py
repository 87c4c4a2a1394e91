"""The ingest boundary: validate each event against the policy, pseudonymize its subject.

Nothing here writes. Every line comes out either as a `ValidEvent` (the subject already
replaced by its pseudonym, the attributes checked against the policy's catalog) or as an
error naming the line and the cause, so the registry can refuse a whole file before a single
row is written.

Times: `occurred_at` must fall in the years 1900 to 2200 (see instants.py) and must not lie
in the future. An event reports what has happened, so one dated later than the registry's
clock plus an allowed clock skew is refused: it is a typo (2062 for 2026) or a provider's
wrong clock, and once in the ledger it would count from the day it names. The skew is
`SOCIALCREDIT_MAX_CLOCK_SKEW`, an ISO 8601 duration in days, hours, minutes or seconds
(default PT5M, five minutes), or the Validator's `max_clock_skew_us`. The same rule covers
what the registry builds into events itself (a rating, an opt-in, a reply or a dispute at
`--at`), since those pass through here too; `refuse_future` is the rule for any other path.

Keys and providers are stored in clear, so neither may hold a resident identity number or
an organization's code (`identity.identifier_in`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import NamedTuple

from ..instants import US_PER_SECOND, Duration, TimeFormatError, TimeOutOfRange, format_instant, now_us, parse_instant
from ..ledger.entries import attributes_json as _encode
from ..policy.compiled import EventError, Policy
from .identity import IdentityError, Pseudonymizer, identifier_in
from .readers import FIELDS, REQUIRED, InputError

_FIELD_SET = frozenset(FIELDS)
# What the registry computes and records itself; a provider may not send these.
REGISTRY_EVENTS = frozenset({"peer.trust", "peer.collusion_flag"})
REGISTRY_PROVIDER = "socialcredit"
KINDS = ("person", "organization")
MAX_KEY = 200
MAX_CLOCK_SKEW_ENV = "SOCIALCREDIT_MAX_CLOCK_SKEW"
DEFAULT_MAX_CLOCK_SKEW = "PT5M"


def configured_clock_skew_us(env: Mapping[str, str] = os.environ) -> int:
    """The allowed clock skew in microseconds: SOCIALCREDIT_MAX_CLOCK_SKEW, else five minutes."""
    text = env.get(MAX_CLOCK_SKEW_ENV, "").strip() or DEFAULT_MAX_CLOCK_SKEW
    try:
        skew = Duration.parse(text)
    except TimeFormatError:
        raise TimeFormatError(
            f"{MAX_CLOCK_SKEW_ENV}={text!r} is not an ISO 8601 duration (expected e.g. PT5M, PT30S, PT1H)"
        ) from None
    if skew.months:
        # A month has no fixed length; how far a clock may be off is an exact span.
        raise TimeFormatError(f"{MAX_CLOCK_SKEW_ENV}={text!r}: give the skew in days, hours, minutes or seconds")
    return skew.micros


def refuse_future(instant_us: int, now_us: int, max_skew_us: int) -> None:
    """Raise TimeOutOfRange if `instant_us` is later than the clock (`now_us`) plus the skew."""
    if instant_us > now_us + max_skew_us:
        raise TimeOutOfRange(
            f"{format_instant(instant_us)} is in the future: the registry's clock reads "
            f"{format_instant(now_us - now_us % US_PER_SECOND)} and accepts times at most "
            f"{_span_words(max_skew_us)} ahead ({MAX_CLOCK_SKEW_ENV})"
        )


def _span_words(micros: int) -> str:
    """`300_000_000` → `5 minutes`: the largest unit that divides the span exactly."""
    seconds = micros // US_PER_SECOND
    unit, length = "second", 1
    for name, size in (("day", 86_400), ("hour", 3_600), ("minute", 60)):
        if seconds and seconds % size == 0:
            unit, length = name, size
            break
    count = seconds // length
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


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

    def __init__(self, policy: Policy, pseudonymizer: Pseudonymizer, default_provider: str | None = None, *,
                 clock: Callable[[], int] | None = None, max_clock_skew_us: int | None = None):
        """`clock` is the registry's time in epoch microseconds (default: the system clock; a
        simulation passes its own); `max_clock_skew_us` defaults to SOCIALCREDIT_MAX_CLOCK_SKEW."""
        self.policy = policy
        self.pseudonymizer = pseudonymizer
        if default_provider is not None:
            _refuse_identifier("provider", default_provider, None)
        self.default_provider = default_provider
        self.clock = clock or now_us
        self.max_clock_skew_us = configured_clock_skew_us() if max_clock_skew_us is None else max_clock_skew_us
        # Every time up to here is known to be acceptable; the clock is read again only for a
        # later one (the clock only moves on), so a file of past events reads it once.
        self._accepted_until_us = self.clock() + self.max_clock_skew_us

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
        _refuse_identifier("key", key, line)
        kind = raw.get("subject_kind") or "person"
        if kind != "person" and kind != "organization":
            raise InputError(line, f"subject_kind must be person or organization, got {kind!r}")
        provider = raw.get("provider") or self.default_provider
        if provider is None:
            raise InputError(line, "missing 'provider' (give it in the event or with --provider)")
        if provider.__class__ is not str or len(provider) > MAX_KEY:
            raise InputError(line, "provider must be text")
        if provider is not self.default_provider:  # the default was looked at once, in __init__
            _refuse_identifier("provider", provider, line)
            if self.default_provider is not None and provider != self.default_provider:
                raise InputError(line, f"provider {provider!r} differs from --provider {self.default_provider!r}")
        try:
            occurred = parse_instant(occurred_text)
            if occurred > self._accepted_until_us:
                now = self.clock()
                self._accepted_until_us = now + self.max_clock_skew_us
                refuse_future(occurred, now, self.max_clock_skew_us)
        except TimeFormatError as exc:
            raise InputError(line, f"occurred_at: {exc}") from None
        # The registry's own events never pass through here (registry/ingest.py makes them), so
        # no submitted event may use its name or its event types.
        if provider.strip().casefold() == REGISTRY_PROVIDER:
            raise InputError(line, f"provider {REGISTRY_PROVIDER!r} is the registry itself: a submitted event "
                                   "names the provider that reports it")
        if event_type in REGISTRY_EVENTS:
            raise InputError(line, f"{event_type} is recorded by the registry itself (`socialcredit trust "
                                   "--record`), not by a provider")
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


_INSTEAD = {"key": "use an opaque key (a case or contract number, a hash)", "provider": "name the provider without it"}


def _refuse_identifier(field: str, value: str, line: int | None) -> None:
    """A key or provider is stored in clear: an ID inside it would undo the subject's pseudonym."""
    found = identifier_in(value)
    if found is not None:
        what, masked = found
        raise InputError(line, f"{field} {masked!r} contains what looks like a {what}, which would be stored in "
                               f"clear; {_INSTEAD[field]}")
