"""The policy document: a small declarative vocabulary, validated with pydantic.

There is deliberately no expression language: every rule, list and measure is data, so the
linter can reason about all of them and a resident can be told exactly which one applied.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

from ..instants import Duration, TimeFormatError, zone_named
from .compiled import SERVICE_NAME, SERVICE_PATTERN  # noqa: F401  (SERVICE_PATTERN: where it was)

SubjectKind = Literal["person", "organization"]
Scalar = str | int | float | bool

_IDENT = r"^[a-z0-9][a-z0-9_-]*$"
_DOTTED = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$"
_SERVICE = "^" + SERVICE_NAME + "$"

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


def _duration(value: str) -> str:
    try:
        return Duration.parse(value).text
    except TimeFormatError as exc:
        raise ValueError(str(exc)) from None


# An ISO 8601 duration (`P2Y`, `P180D`, `PT48H`), stored in its normal form. Calendar years
# and months move the date (clamped to the month's end); weeks, days and hours are exact.
DurationText = Annotated[str, AfterValidator(_duration)]

# Descriptions are the policy reference (docs/policy-reference.md is generated from them):
# say what a field does to a standing, as the fold and the linter read it.


class Meta(_Model):
    """Who the policy is and what it reproduces."""

    id: Ident = Field(description="The policy's name: with `version` (and the digest of its text) it "
                                  "identifies the policy in the ledger, in standings and in logged decisions.")
    version: Annotated[str, Field(min_length=1, max_length=40)] = Field(
        description="The policy's version, e.g. `2026.1`.")
    title: str = Field(description="A human title, shown by `policy show` and `policy list`.")
    summary: str = Field(default="", description="What the policy does, in a sentence or two; `policy show` "
                                                 "prints it.")
    sources: list[str] = Field(default=[], description="The public material the policy reproduces (laws, "
                                                       "official documents, reporting), one entry each.")
    approximations: list[str] = Field(default=[], description="Where the policy guesses or departs from what it "
                                                              "reproduces, one sentence each; `policy show` "
                                                              "prints every one.")
    timezone: str = Field(default="UTC", description="The IANA time zone whose calendar the policy counts in: "
                                                     "caps per day, week, month or year (`max_per`) and the "
                                                     "raters' `daily_cap` start at local midnight, and "
                                                     "explanations give dates in it.")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zone_named(value)
        except TimeFormatError as exc:
            raise ValueError(str(exc)) from None
        return value


class Attribute(_Model):
    """One attribute of an event type: what an event may or must carry, checked at ingest."""

    type: Literal["string", "integer", "number", "boolean", "reference"] = Field(
        description="What the value is: `string`; `integer` (a whole number); `number`; `boolean`; or "
                    "`reference`, another subject (a rater), pseudonymized at ingest like the subject itself. "
                    "Numbers and booleans may also come as text (`\"30\"`, `\"true\"`), as a CSV cell does.")
    kind: SubjectKind = Field(default="person", description="For a `reference`: the kind of subject it names.")
    required: bool = Field(default=False, description="An event without this attribute is refused at ingest.")
    values: list[str] | None = Field(default=None, description="For a `string`: the only values accepted; "
                                                               "any other is refused at ingest.")
    min: float | None = Field(default=None, description="For an `integer` or `number`: the smallest value "
                                                        "accepted.")
    max: float | None = Field(default=None, description="For an `integer` or `number`: the largest value "
                                                        "accepted.")
    max_length: int = Field(default=500, ge=1, le=100_000,
                            description="For a `string`: the longest value accepted, in characters.")
    description: str = Field(default="", description="What the attribute means, for readers of the policy "
                                                     "(the linter reads it too).")

    @model_validator(mode="after")
    def _values_only_for_strings(self) -> "Attribute":
        if self.values is not None and self.type != "string":
            raise ValueError("`values` (an allowed set) only applies to string attributes")
        return self


class EventType(_Model):
    """One kind of event a provider may report (the catalogue); anything else is refused at ingest."""

    domain: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")] = Field(
        description="The area of life the event comes from; the event type's name must start with it "
                    "(`court` in `court.judgment_unfulfilled`). The linter compares it with the services a "
                    "measure acts on (`cross-context`).")
    description: str = Field(description="What happened, in plain words: `explain` shows it for every "
                                         "record of this type.")
    subject_kinds: list[SubjectKind] = Field(default=["person", "organization"],
                                             description="Whom an event of this type can be about; one about "
                                                         "another kind of subject is refused at ingest.")
    attributes: dict[Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")], Attribute] = Field(
        default={}, description="The attributes by name; an event carrying one not named here is refused "
                                "at ingest.")


class Scale(_Model):
    """The score's range and how the dimensions make it."""

    base: float = Field(description="The score with no records when `combine = \"sum\"`. Not used by "
                                    "`\"weighted\"`, where the dimensions' own `base` values set the start.")
    min: float = Field(description="The lowest score: the score is clamped to [`min`, `max`].")
    max: float = Field(description="The highest score.")
    combine: Literal["sum", "weighted"] = Field(
        default="sum",
        description="`sum`: score = `base` + Σ weight × dimension value. `weighted`: each dimension is a "
                    "sub-score clamped to its own [`min`, `max`], and score = `min` + (`max` − `min`) × "
                    "Σ weight × position / Σ weight, where a sub-score's position is 0 at its `min` and 1 "
                    "at its `max`.")
    decimals: int = Field(default=0, ge=0, le=6, description="The digits after the point that the score and "
                                                             "the dimension values are rounded to (half up).")
    unit: str = Field(default="points", description="What the score counts, as explanations say it "
                                                    "(\"−5 points\").")
    scored: bool = Field(default=True, description="`false` for a policy that keeps no score and works "
                                                   "through lists alone (China's judgment-defaulter system): "
                                                   "standings and decisions then show no score, and no rule, "
                                                   "tier or measure may depend on one.")

    @model_validator(mode="after")
    def _ordered(self) -> "Scale":
        if not self.min <= self.base <= self.max:
            raise ValueError(f"base {self.base} must lie between min {self.min} and max {self.max}")
        return self


class Dimension(_Model):
    """A part of the score.

    `sum`: points of rules (from `base`). `rating_mean`: the weighted mean of the stars of
    the ratings received (`ratings.event`), with a prior (a Bayesian average: a newcomer sits at
    `prior_mean`, and each rating moves the mean by its weight against `prior_weight`),
    over the last `window` ratings or decaying with `half_life`, optionally one `category`.
    `latest`: the newest value of a number attribute of one event type (e.g. the global
    trust the registry records), for `lifetime`. Rule points on the dimension add to it.
    """

    id: Ident = Field(description="The dimension's name; rules and conditions refer to it.")
    label: str = Field(description="The dimension's name in explanations (\"pulls your personal down\").")
    aggregate: Literal["sum", "rating_mean", "latest"] = Field(
        default="sum", description="What the dimension's value starts from: `sum`, nothing but the points "
                                   "of rules; `rating_mean`, the weighted mean of the ratings received; "
                                   "`latest`, the newest value of an event's number attribute.")
    weight: float = Field(default=1.0, ge=0, description="How much the dimension counts in the score (see "
                                                         "`scale.combine`); 0 shows it without counting it.")
    base: float = Field(default=0.0, description="Weighted scales: the sub-score before any record (a "
                                                 "`rating_mean` or `latest` value takes its place while "
                                                 "there is one). Not used by `combine = \"sum\"`.")
    min: float | None = Field(default=None, description="Weighted scales (required there): the lowest "
                                                        "sub-score. Not used by `combine = \"sum\"`.")
    max: float | None = Field(default=None, description="Weighted scales (required there): the highest "
                                                        "sub-score. Not used by `combine = \"sum\"`.")
    description: str = Field(default="", description="What the dimension measures, for readers of the policy "
                                                     "(the linter reads it too).")
    # rating_mean
    prior_mean: float | None = Field(default=None, description="`rating_mean` (required there): where a "
                                                               "subject with no ratings stands.")
    prior_weight: float = Field(default=0.0, ge=0,
                                description="`rating_mean`: how many ratings of weight 1 the prior is worth: "
                                            "mean = (`prior_mean` × `prior_weight` + Σ weight × stars) / "
                                            "(`prior_weight` + Σ weight).")
    window: int | None = Field(default=None, ge=1, description="`rating_mean`: only the newest `window` "
                                                               "ratings that count are averaged.")
    half_life: DurationText | None = Field(default=None,
                                           description="`rating_mean`: a rating's weight halves with every "
                                                       "`half_life` of its age (a month taken as 30.44 days).")
    category: str | None = Field(default=None, description="`rating_mean`: only ratings of this `category` "
                                                           "(one of `ratings.categories`).")
    # latest
    event: EventTypeName | None = Field(default=None, description="`latest` (required there): the event type "
                                                                  "whose attribute gives the value.")
    attribute: str | None = Field(default=None, description="`latest` (required there): the `number` or "
                                                            "`integer` attribute of `event` that gives the "
                                                            "value.")
    lifetime: DurationText | None = Field(default=None,
                                          description="`latest` (required there): how long the newest value "
                                                      "counts after its event; then the dimension falls back "
                                                      "to `base` (weighted) or 0 (sum).")

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
    """At most `count` events of a rule count per calendar period."""

    count: int = Field(ge=1, description="How many events of the rule count in one period; the later ones "
                                         "in the same period do not count, and `explain` says why.")
    period: Literal["P1D", "P1W", "P1M", "P1Y"] = Field(
        description="The calendar period, in the policy's time zone: `P1D` a day, `P1W` a week (from "
                    "Monday), `P1M` a month, `P1Y` a year.")


class CountsUntil(_Model):
    """The contribution lasts while the listing that the same event opened on `list` lasts, plus `after`."""

    list: Ident = Field(description="The list. If the event opened no listing on it (no `enter` trigger "
                                    "matched, or that case was listed already), the rule's points never "
                                    "count.")
    after: DurationText = Field(default="PT0S", description="How long the record keeps counting after the "
                                                            "listing ends.")


Match = dict[str, Scalar | list[Scalar]]
_MATCH = ("Attribute values the event must have: `{ name = value }`, or a list of values of which any will "
          "do. Every attribute named must match; an event without it does not.")


class Rule(_Model):
    """What one kind of event does to the score, and for how long."""

    id: Ident = Field(description="The rule's name, quoted in explanations and lint findings.")
    event: EventTypeName = Field(description="The event type the rule applies to (one of `event_types`).")
    describe: str = Field(min_length=3, description="What the record is, in plain words; every explanation "
                                                    "of it quotes this.")
    dimension: Ident | None = Field(default=None, description="The dimension the points count in (required "
                                                              "when `points` is not 0).")
    points: float = Field(default=0.0, description="What one event adds to the dimension while it counts "
                                                   "(negative: a deduction).")
    lifetime: DurationText | None = Field(default=None,
                                          description="How long the record counts from the time the event "
                                                      "occurred. Give this or `counts_until`: records that "
                                                      "count forever are not allowed.")
    half_life: DurationText | None = Field(default=None,
                                           description="The points halve with every `half_life` of the "
                                                       "record's age while it counts (a month taken as 30.44 "
                                                       "days); without it they count in full.")
    max_per: Cap | None = Field(default=None, description="A cap on how many events of this rule count per "
                                                          "calendar period.")
    score_cap: float | None = Field(default=None, description="While the record counts, the score is at most "
                                                              "this (after the clamp to the scale; a lower "
                                                              "score stays lower).")
    counts_until: CountsUntil | None = Field(default=None, description="Count while a listing lasts instead of "
                                                                       "for a fixed `lifetime`.")
    match: Match = Field(default={}, description=_MATCH)
    negative_rating_multiplier: float | None = Field(
        default=None, gt=0, description="Penalty mode: while the record counts, the negative ratings the "
                                        "subject receives weigh this many times as much (the largest "
                                        "multiplier in force applies).")

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
    """An event that puts a subject on the list."""

    event: EventTypeName = Field(description="The event type (one of `event_types`).")
    match: Match = Field(default={}, description=_MATCH)
    duration: DurationText | None = Field(default=None,
                                          description="The listing's term, from the event; extensions may "
                                                      "lengthen it. Without it the listing lasts until a "
                                                      "`leave` event.")


class ListExit(_Model):
    """An event that takes a subject off the list: it ends the listing of its case when it occurs."""

    event: EventTypeName = Field(description="The event type (one of `event_types`).")
    match: Match = Field(default={}, description=_MATCH)
    not_before: DurationText | None = Field(
        default=None, description="Credit repair's waiting period: an exit earlier than this after the "
                                  "listing began is refused, and the listing stays (`explain` says so).")


class ListExtension(_Model):
    """An event that moves the end of a listing that has one (a listing without a term is not extended)."""

    event: EventTypeName = Field(description="The event type (one of `event_types`).")
    match: Match = Field(default={}, description=_MATCH)
    by: DurationText | None = Field(default=None, description="Move the end by this much.")
    by_attribute: str | None = Field(default=None, description="An `integer` attribute of the event: move "
                                                               "the end by that many `unit`s.")
    unit: DurationText = Field(default="P1Y", description="What `by_attribute` counts.")

    @model_validator(mode="after")
    def _one_amount(self) -> "ListExtension":
        if (self.by is None) == (self.by_attribute is None):
            raise ValueError("an extension gives exactly one of `by` or `by_attribute`")
        return self


class ListSpec(_Model):
    """A list a subject is put on by events, and taken off by events or the end of a term."""

    id: Ident = Field(description="The list's name; conditions, rules and `discount_lists` refer to it.")
    label: str = Field(description='A noun phrase that reads after "On the" in explanations: '
                                   '"list of judgment defaulters".')
    description: str = Field(default="", description="What the list is, for readers of the policy (the linter "
                                                     "reads it too).")
    case_attribute: str | None = Field(
        default=None, description="An attribute of every event that enters, leaves or extends the list, "
                                  "naming the case: a subject has one listing per case, and a leave or "
                                  "extension acts on the listing of its own case. Without it, one listing "
                                  "per subject.")
    enter: list[ListEntry] = Field(min_length=1, description="The events that put a subject on the list. "
                                                             "While a listing of the same case is in force, "
                                                             "another such event changes nothing.")
    leave: list[ListExit] = Field(default=[], description="The events that take a subject off the list. "
                                                          "Without any, only a term ends a listing.")
    extend: list[ListExtension] = Field(default=[], description="The events that lengthen a listing that has "
                                                                "an end.")
    max_total: DurationText | None = Field(
        default=None, description="The longest a listing can last, counted from its start: extensions stop "
                                  "there. It does not bound a listing entered without a `duration`.")
    notice: str = Field(default="", description="What the list means for the subject, in plain words (the "
                                                "linter reads it too).")
    public: bool = Field(default=False, description="Published: the HTTP service shows anyone, without a key, "
                                                    "who is on it now (by pseudonym, with case and dates), as "
                                                    "the courts publish their list of judgment defaulters.")


class Tier(_Model):
    """A named band of scores. Tiers are written from the highest `min` down, the floor tier last."""

    id: Annotated[str, Field(min_length=1, max_length=40)] = Field(description="The tier's name, e.g. `AAA`.")
    min: float | None = Field(default=None, description="The lowest score in the tier. Leave it out for the "
                                                        "floor tier: every score below the other tiers.")
    label: str = Field(default="", description="A longer name for the tier.")


class Condition(_Model):
    """When a measure is in force: exactly one of `list`, `tier`, `score_below`, `score_at_least`, `dimension`."""

    list: Ident | None = Field(default=None, description="While the subject is on this list (any case).")
    tier: Strings | None = Field(default=None, description="While the subject's tier is one of these.")
    score_below: float | None = Field(default=None, description="While the score is below this.")
    score_at_least: float | None = Field(default=None, description="While the score is this or more.")
    dimension: Ident | None = Field(default=None, description="A dimension whose value, rounded to the "
                                                              "scale's `decimals`, is compared with `below` "
                                                              "or `at_least` (give one).")
    below: float | None = Field(default=None, description="With `dimension`: while its value is below this.")
    at_least: float | None = Field(default=None, description="With `dimension`: while its value is this or "
                                                             "more.")
    unless_list: Idents = Field(default=[], description="Not in force while the subject is on any of these "
                                                       "lists.")

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
    """What a condition does to a service: the part of a policy that reaches a subject's life."""

    id: Ident = Field(description="The measure's name, shown with every decision it takes part in.")
    when: Condition = Field(description="When the measure is in force.")
    service: ServiceName = Field(description="The service it acts on (dotted lower-case words); it governs "
                                             "every service below it too (`transport.rail` covers "
                                             "`transport.rail.high_speed`), not those beside it.")
    effect: Effect = Field(description="What it does. `deny` refuses the service, and a deny on the service "
                                       "or above it wins; every other effect allows it with a treatment, the "
                                       "first in policy order naming the effect. Adverse effects: `deny`, "
                                       "`deposit_required`, `extra_inspection`.")
    legal_basis: str = Field(default="", description="The law or rule that allows the measure, shown with "
                                                     "every decision it takes part in.")
    duration: DurationText | None = Field(
        default=None, description="For a `list` condition only: the measure lasts this long from the start "
                                  "of the subject's earliest listing in force (and no longer than the "
                                  "listing). Without it, as long as the condition holds.")
    notice: str = Field(min_length=3, description="What the subject is told when the measure applies "
                                                  "(`check`, `explain`).")
    remedy: str = Field(default="", description="What the subject can do about it, shown with the notice.")

    @model_validator(mode="after")
    def _duration_needs_a_start(self) -> "Measure":
        # A listing has a start date to count from; a score or tier does not.
        if self.duration is not None and self.when.list is None:
            raise ValueError("`duration` applies to list conditions only (it counts from the listing)")
        return self


class WeightBucket(_Model):
    """One step of a stepped rater weight."""

    at_least: float = Field(description="The lowest value of the source in this bucket.")
    weight: float = Field(ge=0, description="The weight of a rating whose rater's source value is in it.")


class LinearWeight(_Model):
    """weight = weight_low + (value − low) / (high − low) × (weight_high − weight_low), clamped."""

    low: float = Field(description="At this source value or below, a rating weighs `weight_low`.")
    high: float = Field(description="At this source value or above, a rating weighs `weight_high`.")
    weight_low: float = Field(ge=0, description="The weight at `low`.")
    weight_high: float = Field(ge=0, description="The weight at `high`.")

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

    source: str = Field(default="score", description="`score`, or a dimension's id: the rater's value, as it "
                                                     "stood when they rated, that sets the weight.")
    buckets: list[WeightBucket] = Field(default=[], description="Stepped weights, in ascending order of "
                                                                "`at_least`: the highest bucket the source "
                                                                "reaches gives the weight, 0 below the first.")
    linear: LinearWeight | None = Field(default=None, description="A weight on a straight line between two "
                                                                  "points, flat outside them (instead of "
                                                                  "`buckets`).")
    explain: str = Field(default="", description="The formula in words, for readers of the policy (each "
                                                 "rating's own reason is written by the registry).")
    discount_lists: dict[Ident, Annotated[float, Field(ge=0, le=1)]] = Field(
        default={}, description="Lists that mark a rater as untrustworthy, each with a factor from 0 to 1 "
                                "that the weight is multiplied by while the rater is on it.")

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

    neutral: float = Field(default=0.5, gt=0, le=1, description="The positivity at or above which a reviewer "
                                                                "keeps full weight.")


class Ratings(_Model):
    """People rating people: who may rate whom, how much a rating counts, abuse limits.

    A policy with ratings accepts `peer.opt_in` and `peer.opt_out` events: only a subject who
    has opted in may rate. The attributes `peer.opt_in` requires are the facts an opt-in must
    carry (`socialcredit enrol --attribute NAME=VALUE`).
    """

    event: EventTypeName = Field(default="peer.rating",
                                 description="The rating event type; it needs a `reference` attribute "
                                             "`rater`, an `integer` attribute `stars` and a `string` "
                                             "attribute `interaction` (one rating per rater, subject and "
                                             "interaction).")
    categories: list[str] = Field(default=[], description="The categories a `rating_mean` dimension may "
                                                          "average (its `category`).")
    ratee_consent: bool = Field(default=False, description="Only subjects who have opted in (`peer.opt_in`, "
                                                           "not since opted out) can be rated. Raters must "
                                                           "have opted in either way.")
    daily_cap: int = Field(default=100, ge=1, description="How many ratings one rater may give per calendar "
                                                          "day in the policy's time zone; more are refused "
                                                          "at ingest.")
    negative_at_most: int = Field(default=2, ge=1, le=4, description="Ratings of this many stars or fewer are "
                                                                     "negative (held, multiplied in penalty "
                                                                     "mode, against positivity).")
    hold_negative: DurationText | None = Field(
        default=None, description="Negative ratings wait this long before they count; one the subject "
                                  "disputes (`peer.review_disputed`) during the wait never counts.")
    weight: RaterWeight = Field(default=RaterWeight(), description="How much a rating counts.")
    positivity: Positivity | None = Field(default=None, description="Weigh down reviewers whose earlier "
                                                                    "reviews were mostly negative.")
    pretrusted: list[str] = Field(default=[], description="References of the subjects `socialcredit trust` "
                                                          "starts from (EigenTrust's pre-trusted seeds); "
                                                          "without them, everyone alike.")
    trust_teleport: float = Field(default=0.15, gt=0, lt=1, description="EigenTrust's teleport share: the "
                                                                        "part of all trust handed back to "
                                                                        "the seeds at every step.")


class PolicyDocument(_Model):
    """A whole policy: one TOML file."""

    policy: Meta = Field(description="Who the policy is.")
    scale: Scale = Field(description="The score's range and how dimensions make it.")
    event_types: dict[EventTypeName, EventType] = Field(description="The catalogue: every event type the "
                                                                    "policy accepts, by name "
                                                                    "(`domain.what`).")
    dimensions: list[Dimension] = Field(min_length=1, description="The parts of the score (at least one).")
    rules: list[Rule] = Field(default=[], description="What events do to the score.")
    tiers: list[Tier] = Field(default=[], description="Named bands of scores, from the highest down.")
    lists: list[ListSpec] = Field(default=[], description="Lists that events put subjects on and take them "
                                                          "off.")
    measures: list[Measure] = Field(default=[], description="What conditions do to services.")
    ratings: Ratings | None = Field(default=None, description="People rating people (required by "
                                                              "`rating_mean` dimensions).")

    def _check_nothing_scores(self) -> None:
        """With `scored = false` a score is never shown, so nothing may be made of one."""
        scoring = [f"rule {r.id!r}" for r in self.rules if r.points or r.score_cap is not None]
        scoring += [f"tier {t.id!r}" for t in self.tiers]
        scoring += [f"measure {m.id!r}" for m in self.measures
                    if m.when.list is None]  # tiers, score and dimension thresholds all read the score
        if scoring:
            raise ValueError(f"scale.scored is false but {', '.join(scoring[:3])} "
                             f"{'depends' if len(scoring) == 1 else 'depend'} on a score")

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
        if not self.scale.scored:
            self._check_nothing_scores()
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


# A service asked about (`check`): as a policy names one, at most 120 characters (what a decision's
# row holds), and to its very end: `$` would let a trailing line break through.

