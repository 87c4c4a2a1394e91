"""The policy document: a small declarative vocabulary, validated with pydantic.

There is deliberately no expression language: every rule, list and measure is data, so the
linter can reason about all of them and a resident can be told exactly which one applied.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from ..instants import Duration, TimeFormatError, zone_named

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
EFFECTS = get_args(Effect)


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
    # The calendar the policy counts in: caps per month, the dates in explanations.
    timezone: str = "UTC"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone_named(value)
        except TimeFormatError as exc:
            raise ValueError(str(exc)) from None
        return value


class Attribute(_Model):
    # `reference`: another subject (a rater), pseudonymized at ingest like the subject itself.
    type: Literal["string", "integer", "number", "boolean", "reference"]
    kind: SubjectKind = "person"  # the kind of subject a `reference` names
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
    """A part of the score.

    `sum`: points of rules (from `base`). `rating_mean`: the weighted mean of the stars of
    `peer.rating` events received, with a prior (a Bayesian average: a newcomer sits at
    `prior_mean`, and each rating moves the mean by its weight against `prior_weight`),
    over the last `window` ratings or decaying with `half_life`, optionally one `category`.
    `latest`: the newest value of a number attribute of one event type (e.g. the global
    trust the registry records), for `lifetime`. Rule points on the dimension add to it.
    """

    id: Ident
    label: str
    aggregate: Literal["sum", "rating_mean", "latest"] = "sum"
    weight: float = Field(default=1.0, ge=0)
    # Used by `combine = "weighted"`: the dimension is a sub-score clamped to [min, max],
    # starting at `base`, and enters the total as its position inside that range.
    base: float = 0.0
    min: float | None = None
    max: float | None = None
    description: str = ""
    # rating_mean
    prior_mean: float | None = None
    prior_weight: float = Field(default=0.0, ge=0)
    window: int | None = Field(default=None, ge=1)
    half_life: str | None = None
    category: str | None = None
    # latest
    event: EventTypeName | None = None
    attribute: str | None = None
    lifetime: str | None = None

    _check_durations = field_validator("half_life", "lifetime")(_duration)

    @model_validator(mode="after")
    def _fits_aggregate(self) -> "Dimension":
        if self.aggregate == "rating_mean" and self.prior_mean is None:
            raise ValueError("a rating_mean dimension needs a `prior_mean` (where a newcomer starts)")
        if self.aggregate == "latest" and (self.event is None or self.attribute is None or self.lifetime is None):
            raise ValueError("a latest dimension needs `event`, `attribute` and `lifetime`")
        if self.aggregate != "rating_mean" and (self.window or self.half_life or self.category):
            raise ValueError("window, half_life and category belong to a rating_mean dimension")
        return self


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
    # Penalty mode: while this record counts, negative ratings the subject receives weigh this much more.
    negative_rating_multiplier: float | None = Field(default=None, gt=0)

    _check_lifetime = field_validator("lifetime", "half_life")(_duration)

    @model_validator(mode="after")
    def _consistent(self) -> "Rule":
        if self.points and self.dimension is None:
            raise ValueError("a rule with points must name the `dimension` they count in")
        if not self.points and self.score_cap is None and self.negative_rating_multiplier is None:
            raise ValueError("a rule must give `points`, a `score_cap` or a `negative_rating_multiplier`")
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


class WeightBucket(_Model):
    at_least: float
    weight: float = Field(ge=0)


class LinearWeight(_Model):
    """weight = weight_low + (value − low) / (high − low) × (weight_high − weight_low), clamped."""

    low: float
    high: float
    weight_low: float = Field(ge=0)
    weight_high: float = Field(ge=0)

    @model_validator(mode="after")
    def _range(self) -> "LinearWeight":
        if not self.low < self.high:
            raise ValueError("a linear weight needs low < high")
        return self


class RaterWeight(_Model):
    """How much a rating counts, fixed when it is ingested from the rater's standing then.

    `source`: the rater's `score`, or one of the rater's dimensions by id. `buckets`: the
    weight of the highest bucket whose `at_least` the source reaches (0 below the first);
    `linear`: a straight line between two points, flat outside them; with neither, every
    rating weighs 1. `explain` states the formula in words.
    """

    source: str = "score"
    buckets: list[WeightBucket] = []
    linear: LinearWeight | None = None
    explain: str = ""
    # Lists that mark a rater as untrustworthy (e.g. suspected rating rings) → factor.
    discount_lists: dict[Ident, Annotated[float, Field(ge=0, le=1)]] = {}

    @model_validator(mode="after")
    def _ascending(self) -> "RaterWeight":
        thresholds = [b.at_least for b in self.buckets]
        if thresholds != sorted(thresholds):
            raise ValueError("weight buckets must be in ascending order of `at_least`")
        if self.buckets and self.linear is not None:
            raise ValueError("give either weight `buckets` or a `linear` weight, not both")
        return self


class Positivity(_Model):
    """Reviewers whose reviews are mostly negative count less (Peeple's "positivity").

    positivity = (positive + 1) / (reviews + 2) over the reviewer's earlier reviews
    (a Laplace estimate: a new reviewer starts at 1/2); the weight is multiplied by
    min(1, positivity / `neutral`), so reviewers at or above `neutral` keep full weight.
    """

    neutral: float = Field(default=0.5, gt=0, le=1)


class Ratings(_Model):
    """People rating people: who may rate whom, how much a rating counts, abuse limits."""

    event: EventTypeName = "peer.rating"
    categories: list[str] = []
    ratee_consent: bool = False  # Peeple: only subjects who opted in can be rated
    daily_cap: int = Field(default=100, ge=1)  # ratings one rater may give per UTC day
    negative_at_most: int = Field(default=2, ge=1, le=4)  # stars at or below are negative
    hold_negative: str | None = None  # Peeple: negative reviews wait this long before they count
    weight: RaterWeight = RaterWeight()
    positivity: Positivity | None = None
    pretrusted: list[str] = []  # references of EigenTrust's pre-trusted seed subjects
    trust_teleport: float = Field(default=0.15, gt=0, lt=1)

    _check_hold = field_validator("hold_negative")(_duration)


class PolicyDocument(_Model):
    policy: Meta
    scale: Scale
    event_types: dict[EventTypeName, EventType]
    dimensions: list[Dimension] = Field(min_length=1)
    rules: list[Rule] = []
    tiers: list[Tier] = []
    lists: list[ListSpec] = []
    measures: list[Measure] = []
    ratings: Ratings | None = None

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
        minimums = [t.min for t in self.tiers if t.min is not None]
        if self.tiers and (self.tiers[-1].min is not None or minimums != sorted(minimums, reverse=True)
                           or len(set(minimums)) != len(minimums)):
            # Written top down, a misplaced cut-off (A above AAA) is a typo the reader can see.
            raise ValueError("tiers must be listed from the highest `min` down, each `min` different, "
                             "the floor tier (no `min`) last")
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
        self._check_ratings(dimensions, lists)
        if self.scale.combine == "weighted":
            for dim in self.dimensions:
                if dim.min is None or dim.max is None or not dim.min < dim.max:
                    raise ValueError(
                        f"dimension {dim.id!r}: a weighted scale needs min < max on every dimension"
                    )
            if not sum(d.weight for d in self.dimensions) > 0:
                raise ValueError("a weighted scale needs dimension weights that add up to more than 0")
        return self

    def _check_ratings(self, dimensions: set[str], lists: set[str]) -> None:
        rating_dims = [d for d in self.dimensions if d.aggregate == "rating_mean"]
        for dim in self.dimensions:
            if dim.aggregate == "latest":
                spec = self.event_types.get(dim.event)
                if spec is None or spec.attributes.get(dim.attribute, Attribute(type="string")).type not in (
                        "number", "integer"):
                    raise ValueError(f"dimension {dim.id!r}: {dim.event}.{dim.attribute} is not a number attribute")
        if rating_dims and self.ratings is None:
            raise ValueError("rating_mean dimensions need a [ratings] section")
        if self.ratings is None:
            return
        event = self.ratings.event
        spec = self.event_types.get(event)
        if spec is None:
            raise ValueError(f"ratings: event type {event!r} is not in event_types")
        needed = {"rater": "reference", "stars": "integer", "interaction": "string"}
        for name, kind in needed.items():
            if name not in spec.attributes or spec.attributes[name].type != kind:
                raise ValueError(f"ratings: {event} needs a {kind} attribute {name!r}")
        for name in ("peer.opt_in", "peer.opt_out"):
            if name not in self.event_types:
                raise ValueError(f"ratings: a ratings policy must accept {name} events (enrolment and consent)")
        for dim in rating_dims:
            if dim.category is not None and dim.category not in self.ratings.categories:
                raise ValueError(f"dimension {dim.id!r}: category {dim.category!r} is not in ratings.categories")
        source = self.ratings.weight.source
        if source != "score" and source not in dimensions:
            raise ValueError(f"ratings.weight: source {source!r} is neither `score` nor a dimension")
        for name in self.ratings.weight.discount_lists:
            if name not in lists:
                raise ValueError(f"ratings.weight: unknown list {name!r} in discount_lists")

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
