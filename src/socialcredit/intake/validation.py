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
an organization's code (`identity.identifier_in`), nor any character that is not printable (a
NUL, a line break, a bidirectional override, a lone surrogate: `refuse_unstorable_name`). An
attribute's text may hold line breaks and tabs but no other control character and no lone
surrogate (`refuse_unstorable_text`): PostgreSQL refuses a NUL, UTF-8 cannot encode a surrogate.

Each field is of the type it claims to be: a subject, type or time that is 0, false, [] or {}
is refused as not text (not taken for missing, nor for "person"); a key may also be a whole
number. A field given as null or "" is not given (as an empty CSV cell is not).
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import NamedTuple

from ..errors import excerpt
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
            if default_provider.__class__ is not str or not default_provider:
                raise InputError(None, f"--provider must name a provider, got {excerpt(default_provider)}")
            refuse_unstorable_name("provider", default_provider, None)
            self._refuse_the_registrys_name(default_provider, None)
        self.default_provider = default_provider
        self._providers_seen: set[str] = set()  # named by events of this batch and found acceptable
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
        if raw.__class__ is not dict:
            raise InputError(line, f"expected an object with {', '.join(REQUIRED)}, got {excerpt(raw)}")
        if not _FIELD_SET.issuperset(raw):
            name = next(n for n in raw if n not in _FIELD_SET)
            raise InputError(line, f"unknown field {excerpt(name)} (fields: {', '.join(FIELDS)})")
        subject = raw.get("subject")
        event_type = raw.get("type")
        occurred_text = raw.get("occurred_at")
        if not (subject.__class__ is str and subject and event_type.__class__ is str and event_type
                and occurred_text.__class__ is str and occurred_text):
            raise InputError(line, _text_field_problem(raw))
        key = raw.get("key")
        if key.__class__ is not str or not key:
            key = _key_number(key, line)
        refuse_unstorable_name("key", key, line)
        kind = raw.get("subject_kind")
        if kind is None or kind == "":  # not given, as a CSV row's empty cell says
            kind = "person"
        elif kind != "person" and kind != "organization":
            raise InputError(line, f"subject_kind must be person or organization, got {excerpt(kind)}")
        provider = raw.get("provider")
        if provider is None or provider == "":
            provider = self.default_provider
            if provider is None:
                raise InputError(line, "missing 'provider' (give it in the event or with --provider)")
        elif provider != self.default_provider and (provider.__class__ is not str
                                                     or provider not in self._providers_seen):
            # The default was looked at once, in __init__; a file names few providers, so each
            # is looked at once too.
            if provider.__class__ is not str:
                raise InputError(line, f"provider must be text, got {excerpt(provider)}")
            refuse_unstorable_name("provider", provider, line)
            if self.default_provider is not None:
                raise InputError(line, f"provider {excerpt(provider)} differs from --provider "
                                       f"{excerpt(self.default_provider)}")
            self._refuse_the_registrys_name(provider, line)
            self._providers_seen.add(provider)
        try:
            occurred = parse_instant(occurred_text)
            if occurred > self._accepted_until_us:
                now = self.clock()
                self._accepted_until_us = now + self.max_clock_skew_us
                refuse_future(occurred, now, self.max_clock_skew_us)
        except TimeFormatError as exc:
            raise InputError(line, f"occurred_at: {exc}") from None
        if event_type in REGISTRY_EVENTS:
            raise InputError(line, f"{event_type} is recorded by the registry itself (`socialcredit trust "
                                   "--record`), not by a provider")
        attributes = self.policy.validate_event(event_type, raw.get("attributes"), kind)
        for name, value in attributes.items():
            if value.__class__ is str:
                refuse_unstorable_text(f"attribute {name!r} of {event_type}", value, line)
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


    @staticmethod
    def _refuse_the_registrys_name(provider: str, line: int | None) -> None:
        # The registry's own events never pass through here (registry/ingest.py makes them), so
        # no submitted event may use its name or its event types.
        if provider.strip().casefold() == REGISTRY_PROVIDER:
            raise InputError(line, f"provider {REGISTRY_PROVIDER!r} is the registry itself: a submitted event "
                                   "names the provider that reports it")


def _text_field_problem(raw: dict) -> str:
    """What is wrong with the subject, type or occurred_at of an event that lacks one as text."""
    for name in ("subject", "type", "occurred_at"):
        value = raw.get(name)
        if value is None or value == "":
            return f"missing {name!r}"
        if value.__class__ is not str:
            what = "text (an RFC 3339 time)" if name == "occurred_at" else "text"
            return f"{name} must be {what}, got {excerpt(value)}"
    raise AssertionError("called for an event whose subject, type and occurred_at are all text")


_LONGEST_KEY_NUMBER = 10 ** (MAX_KEY - 1)  # its digits and a sign fit in MAX_KEY characters


def _key_number(key: object, line: int | None) -> str:
    """The key of an event that does not give it as text: a whole number (a case number) is
    taken as its digits; anything else is refused."""
    if key is None or key == "":
        raise InputError(line, "missing 'key'")
    if key.__class__ is int and -_LONGEST_KEY_NUMBER < key < _LONGEST_KEY_NUMBER:
        return str(key)
    raise InputError(line, f"key must be text of at most {MAX_KEY} characters, got {excerpt(key)}")


_INSTEAD = {"key": "use an opaque key (a case or contract number, a hash)", "provider": "name the provider without it",
            "--as": "name the principal without it"}


def refuse_unstorable_name(field: str, value: str, line: int | None = None) -> None:
    """A name stored in clear, compared by the database and shown in listings (an event's key or
    provider, a principal) must be what it looks like. So: at most MAX_KEY characters, printable
    ones only (no control, bidirectional, zero-width, private-use or unassigned character, no
    space but ' ': each would make two names look alike or a listing lie), and no identifier
    in it, which would undo a subject's pseudonym."""
    if len(value) > MAX_KEY:
        raise InputError(line, f"{field} must be text of at most {MAX_KEY} characters, got {len(value):,} characters")
    if not value.isprintable():
        raise InputError(line, f"{field} {excerpt(value)} {_unprintable(value)}")
    found = identifier_in(value)
    if found is not None:
        what, masked = found
        raise InputError(line, f"{field} {excerpt(masked)} contains what looks like a {what}, which would be "
                               f"stored in clear; {_INSTEAD[field]}")


_CHARACTER_WORDS = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character (bidirectional or zero-width)",
    "Cs": "a lone surrogate (half of a UTF-16 pair, which UTF-8 cannot encode)",
    "Co": "a private-use character",
    "Cn": "an unassigned character",
}


def _unprintable(value: str) -> str:
    """`has a control character at position 2 (U+0000)`: the first character that is not printable."""
    position, char = next((i, c) for i, c in enumerate(value, start=1) if not c.isprintable())
    words = _CHARACTER_WORDS.get(unicodedata.category(char), "a space or line break other than ' '")
    return f"has {words} at position {position} (U+{ord(char):04X})"


# Stored text (an attribute, a caller's purpose) may be any text, line breaks and tabs too, but
# not what no database column or UTF-8 holds (a NUL: PostgreSQL refuses it; a lone surrogate:
# UTF-8 cannot encode it), nor the other control characters (a terminal obeys them when a
# review is shown).
_UNSTORABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def refuse_unstorable_text(where: str, value: str, line: int | None = None) -> None:
    """Refuse text that cannot be stored or shown as it is; `where` names it in the message."""
    found = _UNSTORABLE.search(value)
    if found is not None:
        char = found.group()
        raise InputError(line, f"{where} has {_CHARACTER_WORDS[unicodedata.category(char)]} at position "
                               f"{found.start() + 1} (U+{ord(char):04X})")
