"""The policy document: a small declarative vocabulary, validated with pydantic.

There is deliberately no expression language: every rule, list and measure is data, so the
linter can reason about all of them and a resident can be told exactly which one applied.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .._time import CALENDAR_PERIODS, Duration, TimeFormatError

SubjectKind = Literal["person", "organization"]
Scalar = str | int | float | bool

_IDENT = r"^[a-z0-9][a-z0-9_-]*$"
_DOTTED = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
_SERVICE = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"

Ident = Annotated[str, Field(pattern=_IDENT, max_length=64)]
# Aliases, because a field named `list` hides the builtin inside its class body.
Strings = list[str]
Idents = list[Ident]
EventTypeName = Annotated[str, Field(pattern=_DOTTED, max_length=120)]
ServiceName = Annotated[str, Field(pattern=_SERVICE, max_length=120)]

EFFECTS = (
    "deny",
    "allow",
    "privilege",
    "discount",
    "deposit_free",
    "deposit_required",
    "fast_track",
    "priority",
    "extra_inspection",
)
Effect = Literal[
    "deny",
    "allow",
    "privilege",
    "discount",
    "deposit_free",
    "deposit_required",
    "fast_track",
    "priority",
    "extra_inspection",
]


class _Model(BaseModel):
    # Unknown keys are mistakes (a typo in `lifetime` must not silently mean "forever").
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: str | None) -> str | None:
    if value is None:
        return None
    try:
        return Duration.parse(value).text
    except TimeFormatError as exc:
        raise ValueError(str(exc)) from None


class Meta(_Model):
    id: Ident
    version: Annotated[str, Field(min_length=1, max_length=40)]
    title: str
    summary: str = ""
    sources: list[str] = []
    approximations: list[str] = []


class Attribute(_Model):
    type: Literal["string", "integer", "number", "boolean"]
    required: bool = False
    values: list[str] | None = None
    min: float | None = None
    max: float | None = None
    max_length: int = Field(default=500, ge=1, le=100_000)
    description: str = ""

    @model_validator(mode="after")
    def _values_only_for_strings(self) -> "Attribute":
        if self.values is not None and self.type != "string":
            raise ValueError("`values` (an allowed set) only applies to string attributes")
        return self


class EventType(_Model):
    domain: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    description: str
    subject_kinds: list[SubjectKind] = ["person", "organization"]
    attributes: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], Attribute] = {}


class Scale(_Model):
    base: float
    min: float
    max: float
    combine: Literal["sum", "weighted"] = "sum"
    decimals: int = Field(default=0, ge=0, le=6)
    unit: str = "points"

    @model_validator(mode="after")
    def _ordered(self) -> "Scale":
        if not self.min <= self.base <= self.max:
            raise ValueError(f"base {self.base} must lie between min {self.min} and max {self.max}")
        return self


class Dimension(_Model):
    id: Ident
    label: str
    aggregate: Literal["sum"] = "sum"
    weight: float = Field(default=1.0, ge=0)
    # Used by `combine = "weighted"`: the dimension is a sub-score clamped to [min, max],
    # starting at `base`, and enters the total as its position inside that range.
    base: float = 0.0
    min: float | None = None
    max: float | None = None
    description: str = ""


class Cap(_Model):
    count: int = Field(ge=1)
    period: Literal["P1D", "P1W", "P1M", "P1Y"]


class CountsUntil(_Model):
    """The contribution lasts while the subject is on `list` for the same case, plus `after`."""

    list: Ident
    after: str = "PT0S"

    _check_after = field_validator("after")(_duration)


Match = dict[str, Scalar | list[Scalar]]


class Rule(_Model):
    id: Ident
    event: EventTypeName
    describe: str = Field(min_length=3, description="What the record is, in plain words")
    dimension: Ident | None = None
    points: float = 0.0
    lifetime: str | None = None
    half_life: str | None = None
    max_per: Cap | None = None
    score_cap: float | None = None
    counts_until: CountsUntil | None = None
    match: Match = {}

    _check_lifetime = field_validator("lifetime", "half_life")(_duration)

    @model_validator(mode="after")
    def _consistent(self) -> "Rule":
        if self.points and self.dimension is None:
            raise ValueError("a rule with points must name the `dimension` they count in")
        if not self.points and self.score_cap is None:
            raise ValueError("a rule must give `points` or a `score_cap`")
        if self.lifetime is None and self.counts_until is None:
            raise ValueError(
                "a rule needs a `lifetime` (e.g. P2Y): records that count forever are not allowed"
            )
        if self.lifetime is not None and self.counts_until is not None:
            raise ValueError("give either `lifetime` or `counts_until`, not both")
        return self


class ListEntry(_Model):
    event: EventTypeName
    match: Match = {}
    duration: str | None = None

    _check_duration = field_validator("duration")(_duration)


class ListExit(_Model):
    event: EventTypeName
    match: Match = {}
    not_before: str | None = None  # credit repair: honoured only after this waiting period

    _check_not_before = field_validator("not_before")(_duration)


class ListExtension(_Model):
    event: EventTypeName
    match: Match = {}
    by: str | None = None
    by_attribute: str | None = None  # an integer attribute counted in `unit`s
    unit: str = "P1Y"

    _check = field_validator("by", "unit")(_duration)

    @model_validator(mode="after")
    def _one_amount(self) -> "ListExtension":
        if (self.by is None) == (self.by_attribute is None):
            raise ValueError("an extension gives exactly one of `by` or `by_attribute`")
        return self


class ListSpec(_Model):
    id: Ident
    label: str = Field(description='A noun phrase that reads after "On the": "list of judgment defaulters"')
    description: str = ""
    case_attribute: str | None = None
    enter: list[ListEntry] = Field(min_length=1)
    leave: list[ListExit] = []
    extend: list[ListExtension] = []
    max_total: str | None = None
    notice: str = ""

    _check_max_total = field_validator("max_total")(_duration)


class Tier(_Model):
    id: Annotated[str, Field(min_length=1, max_length=40)]
    min: float | None = None  # None: the floor tier, everything below the others
    label: str = ""


class Condition(_Model):
    list: Ident | None = None
    tier: Strings | None = None
    score_below: float | None = None
    score_at_least: float | None = None
    dimension: Ident | None = None
    below: float | None = None
    at_least: float | None = None
    unless_list: Idents = []

    @model_validator(mode="after")
    def _exactly_one(self) -> "Condition":
        chosen = [
            name
            for name in ("list", "tier", "score_below", "score_at_least", "dimension")
            if getattr(self, name) is not None
        ]
        if len(chosen) != 1:
            raise ValueError(
                "a condition names exactly one of list, tier, score_below, score_at_least, "
                f"dimension (got {', '.join(chosen) or 'none'})"
            )
        if self.dimension is not None and (self.below is None) == (self.at_least is None):
            raise ValueError("a dimension condition gives exactly one of `below` or `at_least`")
        if self.dimension is None and (self.below is not None or self.at_least is not None):
            raise ValueError("`below`/`at_least` belong to a `dimension` condition")
        return self


class Measure(_Model):
    id: Ident
    when: Condition
    service: ServiceName
    effect: Effect
    legal_basis: str = ""
    duration: str | None = None
    notice: str = Field(min_length=3)
    remedy: str = ""

    _check_duration = field_validator("duration")(_duration)

    @model_validator(mode="after")
    def _duration_needs_a_start(self) -> "Measure":
        # A listing has a start date to count from; a score or tier does not.
        if self.duration is not None and self.when.list is None:
            raise ValueError("`duration` applies to list conditions only (it counts from the listing)")
        return self


class PolicyDocument(_Model):
    policy: Meta
    scale: Scale
    event_types: dict[EventTypeName, EventType]
    dimensions: list[Dimension] = Field(min_length=1)
    rules: list[Rule] = []
    tiers: list[Tier] = []
    lists: list[ListSpec] = []
    measures: list[Measure] = []

    @model_validator(mode="after")
    def _references_resolve(self) -> "PolicyDocument":
        _check_unique("dimensions", [d.id for d in self.dimensions])
        _check_unique("rules", [r.id for r in self.rules])
        _check_unique("tiers", [t.id for t in self.tiers])
        _check_unique("lists", [lst.id for lst in self.lists])
        _check_unique("measures", [m.id for m in self.measures])
        for name, event_type in self.event_types.items():
            if name.split(".", 1)[0] != event_type.domain:
                raise ValueError(
                    f"event type {name!r} must start with its domain {event_type.domain!r}"
                )
        dimensions = {d.id for d in self.dimensions}
        lists = {lst.id for lst in self.lists}
        tiers = {t.id for t in self.tiers}
        for rule in self.rules:
            where = f"rule {rule.id!r}"
            self._check_event(where, rule.event, rule.match)
            if rule.dimension is not None and rule.dimension not in dimensions:
                raise ValueError(f"{where}: unknown dimension {rule.dimension!r}")
            if rule.counts_until is not None and rule.counts_until.list not in lists:
                raise ValueError(f"{where}: unknown list {rule.counts_until.list!r}")
        for spec in self.lists:
            where = f"list {spec.id!r}"
            for trigger in [*spec.enter, *spec.leave, *spec.extend]:
                self._check_event(where, trigger.event, trigger.match)
            for ext in spec.extend:
                if ext.by_attribute is not None:
                    attrs = self.event_types[ext.event].attributes
                    if attrs.get(ext.by_attribute, Attribute(type="string")).type != "integer":
                        raise ValueError(
                            f"{where}: extension attribute {ext.by_attribute!r} must be an "
                            f"integer attribute of {ext.event!r}"
                        )
            if spec.case_attribute is not None:
                for trigger in [*spec.enter, *spec.leave, *spec.extend]:
                    if spec.case_attribute not in self.event_types[trigger.event].attributes:
                        raise ValueError(
                            f"{where}: case attribute {spec.case_attribute!r} is not an "
                            f"attribute of {trigger.event!r}"
                        )
        floors = [t.id for t in self.tiers if t.min is None]
        if self.tiers and len(floors) != 1:
            raise ValueError("tiers need exactly one floor tier (a tier without `min`)")
        for measure in self.measures:
            where = f"measure {measure.id!r}"
            cond = measure.when
            if cond.list is not None and cond.list not in lists:
                raise ValueError(f"{where}: unknown list {cond.list!r}")
            for name in cond.unless_list:
                if name not in lists:
                    raise ValueError(f"{where}: unknown list {name!r} in unless_list")
            for name in cond.tier or []:
                if name not in tiers:
                    raise ValueError(f"{where}: unknown tier {name!r}")
            if cond.dimension is not None and cond.dimension not in dimensions:
                raise ValueError(f"{where}: unknown dimension {cond.dimension!r}")
        if self.scale.combine == "weighted":
            for dim in self.dimensions:
                if dim.min is None or dim.max is None or not dim.min < dim.max:
                    raise ValueError(
                        f"dimension {dim.id!r}: a weighted scale needs min < max on every dimension"
                    )
            if not sum(d.weight for d in self.dimensions) > 0:
                raise ValueError("a weighted scale needs dimension weights that add up to more than 0")
        return self

    def _check_event(self, where: str, event: str, match: Match) -> None:
        if event not in self.event_types:
            raise ValueError(f"{where}: event type {event!r} is not in event_types")
        attributes = self.event_types[event].attributes
        for name in match:
            if name not in attributes:
                raise ValueError(f"{where}: matches on {name!r}, not an attribute of {event!r}")


def _check_unique(what: str, ids: list[str]) -> None:
    seen: set[str] = set()
    for ident in ids:
        if ident in seen:
            raise ValueError(f"{what}: id {ident!r} is used twice")
        seen.add(ident)


SERVICE_PATTERN = re.compile(_SERVICE)
