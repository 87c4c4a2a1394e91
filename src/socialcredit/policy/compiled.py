"""A validated policy turned into the lookups the fold and the decisions need.

The document (schema.py) is what people write and read; `Policy` is the same thing indexed
for speed: rules by event type, list triggers by event type, measures by service.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput, excerpt
from ..instants import Duration, zone_named

if TYPE_CHECKING:  # the schema (pydantic) is imported only where a policy's text is validated
    from .schema import Attribute, Match, PolicyDocument

# A service name as measures and checks write it: dotted lower-case words, at most 120 characters.
SERVICE_NAME = r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*"
SERVICE_PATTERN = re.compile(r"(?=.{1,120}\Z)" + SERVICE_NAME + r"\Z")


class EventError(InvalidInput):
    """An event that the policy's catalog does not accept; the message says why."""


MatchItems = tuple[tuple[str, frozenset], ...]


def _compile_match(match: Match) -> MatchItems:
    items = []
    for name, wanted in sorted(match.items()):
        values = wanted if isinstance(wanted, list) else [wanted]
        items.append((name, frozenset(values)))
    return tuple(items)


def matches(items: MatchItems, attributes: dict[str, Any]) -> bool:
    for name, allowed in items:
        if attributes.get(name) not in allowed:
            return False
    return True


def _maybe(text: str | None, zone=None) -> Duration | None:
    """A policy's duration, its calendar months counted on the policy's calendar (`zone`)."""
    if text is None:
        return None
    duration = Duration.parse(text)
    return duration if zone is None else duration.in_zone(zone)


@dataclass(frozen=True, slots=True)
class CompiledRule:
    id: str
    event: str
    describe: str
    dimension: int  # index into Policy.dimensions, -1 for a rule that only caps the score
    points: float
    lifetime: Duration | None
    half_life_us: int | None
    cap_count: int | None
    cap_period: str | None
    score_cap: float | None
    until_list: str | None
    until_after: Duration | None
    match: MatchItems
    negative_rating_multiplier: float | None = None


@dataclass(frozen=True, slots=True)
class CompiledRatingDimension:
    index: int
    prior_mean: float
    prior_weight: float
    window: int | None
    half_life_us: int | None
    category: str | None


@dataclass(frozen=True, slots=True)
class ListTrigger:
    list_id: str
    action: str  # "enter", "leave" or "extend"
    match: MatchItems
    case_attribute: str | None
    duration: Duration | None = None  # enter: how long the listing lasts; extend: by how much
    not_before: Duration | None = None  # leave: credit repair waiting period
    by_attribute: str | None = None
    unit: Duration | None = None


@dataclass(frozen=True, slots=True)
class CompiledMeasure:
    id: str
    service: str
    effect: str
    kind: str  # "list", "tier", "score_below", "score_at_least", "dimension_below", ...
    list_id: str | None
    tiers: frozenset[str]
    threshold: float | None
    dimension: int
    unless_lists: tuple[str, ...]
    duration: Duration | None
    legal_basis: str
    notice: str
    remedy: str


class Policy:
    """One version of a policy, compiled. Immutable; identified by id, version and digest.

    It is compiled from its validated document, or from a snapshot of that document as plain
    records (policy/snapshot.py), which reads the same and needs no validation library: then
    `document` is validated from the text only when something asks for the document itself.
    """

    def __init__(self, document: PolicyDocument, text: str, source: str = "<string>", *, validated: bool = True):
        self._document = document if validated else None
        self.text = text
        self.source = source
        self.digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
        self.id = document.policy.id
        self.version = document.policy.version
        self.timezone = document.policy.timezone  # the IANA name of the calendar it counts in
        self.zone = zone_named(document.policy.timezone)
        self.scale = document.scale
        self.scored = document.scale.scored  # False: the policy keeps no score, and none is shown
        self.dimensions = tuple(document.dimensions)
        self.dimension_index = {d.id: i for i, d in enumerate(self.dimensions)}
        self.score_factors = _score_factors(document)
        self.event_types = document.event_types
        self.rules = tuple(self._compile_rule(r) for r in document.rules)
        self.rules_by_id = {r.id: r for r in self.rules}
        self.rules_by_event: dict[str, tuple[CompiledRule, ...]] = {}
        for rule in self.rules:
            self.rules_by_event[rule.event] = (*self.rules_by_event.get(rule.event, ()), rule)
        self.lists = {spec.id: spec for spec in document.lists}
        self.list_max_total = {spec.id: _maybe(spec.max_total, self.zone) for spec in document.lists}
        self.list_triggers_by_event: dict[str, tuple[ListTrigger, ...]] = {}
        for trigger in self._list_triggers(document):
            event = trigger[0]
            self.list_triggers_by_event[event] = (
                *self.list_triggers_by_event.get(event, ()),
                trigger[1],
            )
        self.tiers = tuple(
            sorted(document.tiers, key=lambda t: -math.inf if t.min is None else t.min, reverse=True)
        )
        self.measures = tuple(self._compile_measure(m) for m in document.measures)
        self.measures_by_id = {m.id: m for m in self.measures}
        self.has_decay = any(r.half_life_us for r in self.rules)
        self.ratings = document.ratings
        self.hold_negative = _maybe(document.ratings.hold_negative, self.zone) if document.ratings else None
        self.rating_dimensions = tuple(
            CompiledRatingDimension(i, d.prior_mean, d.prior_weight, d.window,
                                    _maybe(d.half_life).approx_micros() if d.half_life else None, d.category)
            for i, d in enumerate(self.dimensions) if d.aggregate == "rating_mean"
        )
        self.latest_dimensions = tuple(
            (i, d.event, d.attribute, _maybe(d.lifetime, self.zone))
            for i, d in enumerate(self.dimensions) if d.aggregate == "latest"
        )
        self.penalty_rules = tuple(r for r in self.rules if r.negative_rating_multiplier)
        # Attributes that name another subject (a rater): pseudonymized at ingest.
        self.reference_attributes = {
            name: tuple((attr, spec.kind) for attr, spec in event.attributes.items() if spec.type == "reference")
            for name, event in document.event_types.items()
        }
        self._validators = {
            name: _attribute_validator(name, spec.attributes)
            for name, spec in document.event_types.items()
        }

    def __reduce__(self):
        # The compiled form holds closures (the attribute validators), so a policy travels to
        # another process as its text and is compiled again there: same text, same digest.
        return (_policy_from_text, (self.text, self.source))

    @property
    def label(self) -> str:
        return f"{self.id} {self.version}"

    def ref(self) -> dict[str, str]:
        return {"id": self.id, "version": self.version, "digest": self.digest, "timezone": self.timezone}

    @property
    def document(self) -> PolicyDocument:
        """The validated policy document (schema.py), as people write and read it."""
        if self._document is None:
            from .load import parse_policy

            self._document = parse_policy(self.text, self.source)._document
        return self._document

    # -- events ------------------------------------------------------------------------------

    def validate_event(self, event_type: str, attributes: Any, subject_kind: str) -> dict:
        """Check an event against the catalog; return its attributes, normalized."""
        spec = self.event_types.get(event_type)
        if spec is None:
            raise EventError(f"unknown event type {excerpt(event_type)} (not in the {self.id} policy)")
        if subject_kind not in spec.subject_kinds:
            raise EventError(f"{event_type} does not apply to a subject of kind {subject_kind}")
        if attributes is None:
            attributes = {}
        if not isinstance(attributes, dict):
            raise EventError(f"attributes must be an object, got {excerpt(attributes)}")
        return self._validators[event_type](attributes)

    # -- scores ------------------------------------------------------------------------------

    def tier_for(self, score: float) -> str | None:
        for tier in self.tiers:
            if tier.min is None or score >= tier.min:
                return tier.id
        return None

    def tier_floor(self, tier_id: str) -> float | None:
        for tier in self.tiers:
            if tier.id == tier_id:
                return tier.min
        return None

    def knows_service(self, service: str) -> bool:
        """Whether any measure is about this service, one above it or one below it.

        A service no measure mentions is simply allowed; this tells a typo from that.
        """
        return _knows_service(self, service)

    def measures_for_service(self, service: str) -> tuple[CompiledMeasure, ...]:
        """Measures that govern `service`: those on it or on any service above it.

        `transport.rail.high_speed` falls under a measure on `transport.rail`; a measure on
        `transport.rail.high_speed` says nothing about `transport.rail.regular`.
        """
        return _measures_for_service(self, service)

    # -- compilation -------------------------------------------------------------------------

    def _compile_rule(self, rule) -> CompiledRule:
        half_life = _maybe(rule.half_life)
        return CompiledRule(
            id=rule.id,
            event=rule.event,
            describe=rule.describe,
            dimension=self.dimension_index[rule.dimension] if rule.dimension else -1,
            points=float(rule.points),
            lifetime=_maybe(rule.lifetime, self.zone),
            half_life_us=half_life.approx_micros() if half_life else None,
            cap_count=rule.max_per.count if rule.max_per else None,
            cap_period=rule.max_per.period if rule.max_per else None,
            score_cap=rule.score_cap,
            until_list=rule.counts_until.list if rule.counts_until else None,
            until_after=_maybe(rule.counts_until.after, self.zone) if rule.counts_until else None,
            match=_compile_match(rule.match),
            negative_rating_multiplier=rule.negative_rating_multiplier,
        )

    def _list_triggers(self, document: PolicyDocument):
        for spec in document.lists:
            case = spec.case_attribute
            for enter in spec.enter:
                yield enter.event, ListTrigger(
                    spec.id, "enter", _compile_match(enter.match), case, _maybe(enter.duration, self.zone)
                )
            for leave in spec.leave:
                yield leave.event, ListTrigger(
                    spec.id,
                    "leave",
                    _compile_match(leave.match),
                    case,
                    not_before=_maybe(leave.not_before, self.zone),
                )
            for ext in spec.extend:
                yield ext.event, ListTrigger(
                    spec.id,
                    "extend",
                    _compile_match(ext.match),
                    case,
                    duration=_maybe(ext.by, self.zone),
                    by_attribute=ext.by_attribute,
                    unit=_maybe(ext.unit, self.zone),
                )

    def _compile_measure(self, measure) -> CompiledMeasure:
        cond = measure.when
        if cond.list is not None:
            kind, threshold = "list", None
        elif cond.tier is not None:
            kind, threshold = "tier", None
        elif cond.score_below is not None:
            kind, threshold = "score_below", cond.score_below
        elif cond.score_at_least is not None:
            kind, threshold = "score_at_least", cond.score_at_least
        elif cond.below is not None:
            kind, threshold = "dimension_below", cond.below
        else:
            kind, threshold = "dimension_at_least", cond.at_least
        return CompiledMeasure(
            id=measure.id,
            service=measure.service,
            effect=measure.effect,
            kind=kind,
            list_id=cond.list,
            tiers=frozenset(cond.tier or ()),
            threshold=threshold,
            dimension=self.dimension_index[cond.dimension] if cond.dimension else -1,
            unless_lists=tuple(cond.unless_list),
            duration=_maybe(measure.duration, self.zone),
            legal_basis=measure.legal_basis,
            notice=measure.notice,
            remedy=measure.remedy,
        )


def _policy_from_text(text: str, source: str) -> "Policy":
    from .load import parse_policy

    return parse_policy(text, source)


def _score_factors(document: PolicyDocument) -> tuple[float, ...]:
    """How much one point on each dimension moves the score (away from its bounds).

    With `combine = "sum"` it is the dimension's weight; with `"weighted"` a point on a
    sub-score of range [min, max] moves the score by weight / Σ weights × scale range / range.
    """
    scale = document.scale
    if scale.combine == "sum":
        return tuple(d.weight for d in document.dimensions)
    total = sum(d.weight for d in document.dimensions)
    return tuple(d.weight / total * (scale.max - scale.min) / (d.max - d.min) for d in document.dimensions)


@lru_cache(maxsize=4096)
def _knows_service(policy: Policy, service: str) -> bool:
    return any(
        service == m.service or service.startswith(m.service + ".") or m.service.startswith(service + ".")
        for m in policy.measures
    )


@lru_cache(maxsize=4096)
def _measures_for_service(policy: Policy, service: str) -> tuple[CompiledMeasure, ...]:
    return tuple(
        m for m in policy.measures if service == m.service or service.startswith(m.service + ".")
    )


def _attribute_validator(event_type: str, schema: dict[str, Attribute]):
    required = tuple(name for name, spec in schema.items() if spec.required)
    checks = {name: _value_check(event_type, name, spec) for name, spec in schema.items()}

    def validate(attributes: dict) -> dict:
        clean = {}
        for name, value in attributes.items():
            check = checks.get(name)
            if check is None:
                raise EventError(f"attribute {excerpt(name)} is not in the schema of {event_type}")
            if value is None:
                continue
            clean[name] = check(value)
        for name in required:
            if name not in clean:
                raise EventError(f"{event_type} requires attribute {name!r}")
        return clean

    return validate


# A number given as text (a CSV cell) is written as JSON writes one, in ASCII digits: Python's
# int() and float() also read "1_000", "١٢", "inf" and "nan", none of which a provider means.
_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+", re.ASCII)
_NUMBER_TEXT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
# The largest whole number every JSON reader keeps exact (a double's 53 bits); beyond it a
# reader in another language would see another number than the one hashed.
EXACT_INTEGER = 2**53
_TOO_LARGE = f"must be a whole number between -2^53 and 2^53 ({EXACT_INTEGER:,})"


def _value_check(event_type: str, name: str, spec: Attribute):
    where = f"attribute {name!r} of {event_type}"

    def bounds(number):
        if isinstance(number, float) and not math.isfinite(number):
            raise EventError(f"{where} must be a finite number")
        if spec.min is not None and number < spec.min:
            raise EventError(f"{where} must be at least {spec.min:g}, got {number}")
        if spec.max is not None and number > spec.max:
            raise EventError(f"{where} must be at most {spec.max:g}, got {number}")
        return number

    if spec.type == "reference":

        def check_reference(value):
            # The registry replaces it by the subject's pseudonym right after this check.
            if not isinstance(value, str) or not value.strip():
                raise EventError(f"{where} must name a subject (a reference)")
            return value

        return check_reference
    if spec.type == "string":
        allowed = frozenset(spec.values) if spec.values is not None else None

        def check_string(value):
            if not isinstance(value, str):
                raise EventError(f"{where} must be text, got {excerpt(value)}")
            if len(value) > spec.max_length:
                raise EventError(f"{where} is longer than {spec.max_length} characters")
            if allowed is not None and value not in allowed:
                raise EventError(
                    f"{where} must be one of {', '.join(sorted(allowed))}; got {excerpt(value)}"
                )
            return value

        return check_string
    if spec.type == "integer":

        def check_integer(value):
            if isinstance(value, str):
                text = value.strip()
                if not _INTEGER_TEXT.fullmatch(text):
                    raise EventError(f"{where} must be a whole number in digits 0-9, got {excerpt(value)}")
                if len(text) > 20:  # past any bound below; int() of over 4,300 digits is a traceback
                    raise EventError(f"{where} {_TOO_LARGE}, got {excerpt(value)}")
                value = int(text)
            if isinstance(value, bool) or not isinstance(value, int):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise EventError(f"{where} must be a whole number, got {excerpt(value)}")
            if not -EXACT_INTEGER < value < EXACT_INTEGER:
                raise EventError(f"{where} {_TOO_LARGE}, got {excerpt(value)}")
            return bounds(value)

        return check_integer
    if spec.type == "number":

        def check_number(value):
            if isinstance(value, str):
                text = value.strip()
                if not _NUMBER_TEXT.fullmatch(text):
                    raise EventError(f"{where} must be a number in digits 0-9, got {excerpt(value)}")
                value = float(text)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise EventError(f"{where} must be a number, got {excerpt(value)}")
            if isinstance(value, float) and value.is_integer() and abs(value) < EXACT_INTEGER:
                value = int(value)  # 3, 3.0 and "3" are one number, stored one way
            elif isinstance(value, int) and not -EXACT_INTEGER < value < EXACT_INTEGER:
                value = _as_float(value, where)  # ... and so are 1e20 and 100000000000000000000
            return bounds(value)

        return check_number

    def check_boolean(value):
        if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
            return value.strip().lower() in ("true", "1")
        if not isinstance(value, bool):
            raise EventError(f"{where} must be true or false, got {excerpt(value)}")
        return value

    return check_boolean


def _as_float(value: int, where: str) -> float:
    try:
        return float(value)
    except OverflowError:
        raise EventError(f"{where} must be a finite number, got {excerpt(value)}") from None
