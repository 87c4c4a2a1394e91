"""The reference semantics: a subject's standing as a pure fold of its ledger entries.

    standing = fold(policy, entries, at, known_at)

`at` says what counts as having happened (events with occurred_at <= at); `known_at` says
what the registry knew (entries with seq < known_at). Nothing else goes in: no clock, no
database, no other subject. Every other engine (materialized standings, the NumPy batch
engine) is tested against this function.

The fold also reports the interval [valid_from, valid_until) around `at` in which nothing
changes (no event occurs, no record expires, no listing starts or ends), so a standing
computed once can answer every check inside it with a lookup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import NamedTuple

from ..ledger.entries import EVENT, VOID, Entry
from ..policy.compiled import CompiledMeasure, CompiledRule, Policy, matches
from ..instants import period_start

# How many future change points the fold looks through to say when a score-based measure
# lifts by itself (records expiring). Beyond that it says "no end in sight" rather than
# spending unbounded work on one subject.
_LOOKAHEAD = 64


@dataclass(slots=True)
class Contribution:
    """What one event does under one rule, at the time asked about."""

    seq: int
    rule: CompiledRule
    occurred_us: int
    until_us: int | None  # None: lasts while a listing lasts, with no known end
    status: str  # counts | expired | capped
    points: float  # effective now (after decay); 0 unless it counts
    effect: float = 0.0  # what it does to the score, once sub-score and score bounds are counted


@dataclass(slots=True)
class Spell:
    """One stay on a list: entered by an event, ended by an exit, a term or never (yet)."""

    list_id: str
    case: str
    seq: int
    since_us: int
    until_us: int | None
    trigger: str = ""
    left_seq: int | None = None
    extended: int = 0
    cap_us: int | None = None
    refused_exits: list[int] = field(default_factory=list)
    extensions: list[tuple[int, int]] = field(default_factory=list)  # (entry, new end)

    def active_at(self, instant: int) -> bool:
        return self.since_us <= instant and (self.until_us is None or instant < self.until_us)


class Reason(NamedTuple):
    """Why a standing or a measure is what it is: one record, and what it does."""

    kind: str  # list | cap | rule | rating
    ident: str  # the list, rule or (for a rating) dimension id
    seq: int  # the evidence entry
    points: float = 0.0  # a rule's points; a rating's stars
    occurred_us: int = 0  # when it happened (a list: when the stay began)
    until_us: int | None = None
    case: str | None = None  # a list stay's case
    weight: float = 0.0  # a rating's effective weight (to six significant digits)
    effect: float | None = None  # a rule's effect on the score (see `_count_effects`)


class ActiveMeasure(NamedTuple):
    measure: CompiledMeasure
    until_us: int | None
    reasons: tuple[Reason, ...]

    @property
    def id(self) -> str:
        return self.measure.id


@dataclass(slots=True)
class Standing:
    subject: str | None
    policy: Policy
    at_us: int
    known_at: int | None
    score: float
    tier: str | None
    dimensions: tuple[float, ...]
    spells: list[Spell]
    active_lists: tuple[Spell, ...]
    measures: tuple[ActiveMeasure, ...]
    reasons: tuple[Reason, ...]
    contributions: list[Contribution]
    ratings: list["Rating"]
    events: list[Entry]
    voided: dict[int, Entry]
    cancelled: list[Entry]
    valid_from_us: int | None
    valid_until_us: int | None  # None: nothing known will change it
    cacheable: bool

    def measures_for(self, service: str) -> list[ActiveMeasure]:
        wanted = {m.id for m in self.policy.measures_for_service(service)}
        return [m for m in self.measures if m.measure.id in wanted]


def fold(policy: Policy, entries: list[Entry], at_us: int, known_at: int | None = None,
         subject: str | None = None) -> Standing:
    """The standing of one subject (all `entries` are its own), at `at_us`, as known at `known_at`."""
    known = entries if known_at is None else [e for e in entries if e.seq < known_at]
    voided = {e.target: e for e in known if e.kind == VOID}
    cancelled = [e for e in known if e.kind == EVENT and e.seq in voided]
    events = sorted(
        (e for e in known if e.kind == EVENT and e.seq not in voided),
        key=lambda e: (e.occurred_us, e.seq),
    )
    clock = _ChangePoints(at_us)
    spells = _list_spells(policy, events, at_us, clock)
    contributions = _contributions(policy, events, spells, at_us, clock)
    return standing_from(policy, subject, at_us, known_at, events, voided, cancelled, spells, contributions, clock)


def standing_from(policy: Policy, subject: str | None, at_us: int, known_at: int | None, events: list[Entry],
                  voided: dict[int, Entry], cancelled: list[Entry], spells: list[Spell],
                  contributions: list[Contribution], clock: "_ChangePoints") -> Standing:
    """The rest of the fold, from the list stays and the records' contributions at `at_us`
    (`clock` holds the change points they and the events gave): the incremental fold
    (scoring/incremental.py) comes in here with the same two, kept from one batch to the next."""
    sums, caps = _sums(policy, contributions)
    ratings = _ratings(policy, events, contributions, at_us, clock)
    aggregates = _aggregates(policy, events, ratings, at_us, clock)
    values = dimension_values(policy, sums, aggregates)
    score = combine(policy, values, caps)
    _count_effects(policy, contributions, sums, aggregates, values)
    tier = policy.tier_for(score)
    active_lists = tuple(s for s in spells if s.active_at(at_us))
    listed = {s.list_id for s in active_lists}
    reasons = _standing_reasons(policy, active_lists, contributions, ratings)
    measures = []
    lifts: dict[tuple, int | None] = {}  # measures sharing a condition lift together
    explained: dict[tuple, tuple[Reason, ...]] = {}  # ... and share their reasons
    for measure in policy.measures:
        active, until = _measure_active(policy, measure, score, tier, values, listed, active_lists, at_us)
        if not active:
            if until is not None:
                clock.add(until)
            continue
        if measure.kind != "list":
            condition = (measure.kind, measure.tiers, measure.threshold, measure.dimension, measure.unless_lists)
            if condition not in lifts:
                lifts[condition] = _lifts_at(policy, measure, events, contributions, spells, at_us)
            until = lifts[condition]
        if until is not None:
            clock.add(until)
        because = (measure.kind, measure.list_id, measure.tiers, measure.threshold, measure.dimension)
        if because not in explained:
            explained[because] = _measure_reasons(policy, measure, active_lists, contributions, ratings)
        measures.append(ActiveMeasure(measure, until, explained[because]))
    decaying = any(c.rule.half_life_us and c.status == "counts" for c in contributions) or any(
        d.half_life_us for d in policy.rating_dimensions)
    return Standing(
        subject=subject,
        policy=policy,
        at_us=at_us,
        known_at=known_at,
        score=score,
        tier=tier,
        dimensions=tuple(round_half_up(v, policy.scale.decimals) for v in values),
        spells=spells,
        active_lists=active_lists,
        measures=tuple(measures),
        reasons=reasons,
        contributions=contributions,
        ratings=ratings,
        events=events,
        voided=voided,
        cancelled=cancelled,
        valid_from_us=clock.before,
        valid_until_us=clock.after,
        cacheable=not decaying,
    )


# -- lists -----------------------------------------------------------------------------------


def _list_spells(policy: Policy, events: list[Entry], at_us: int, clock: "_ChangePoints") -> list[Spell]:
    spells: list[Spell] = []
    open_by_case: dict[tuple[str, str], Spell] = {}
    for event in events:
        clock.add(event.occurred_us)
        if event.occurred_us > at_us:
            continue  # has not happened yet at the time asked about
        list_step(policy, event, spells, open_by_case)
    for spell in spells:
        clock.add(spell.since_us)
        if spell.until_us is not None:
            clock.add(spell.until_us)
    return spells


def list_step(policy: Policy, event: Entry, spells: list[Spell], open_by_case: dict[tuple[str, str], Spell]) -> None:
    """What one event (in time order) does to the list stays: enter, leave or extend one."""
    for trigger in policy.list_triggers_by_event.get(event.type, ()):
        if trigger.match and not matches(trigger.match, event.attributes):
            continue
        case = str(event.attributes.get(trigger.case_attribute, "*")) if trigger.case_attribute else "*"
        slot = (trigger.list_id, case)
        current = open_by_case.get(slot)
        if current is not None and not current.active_at(event.occurred_us):
            current = None
        if trigger.action == "enter":
            if current is not None:
                continue  # already listed for this case; the first listing stands
            until = trigger.duration.after(event.occurred_us) if trigger.duration else None
            max_total = policy.list_max_total[trigger.list_id]
            spell = Spell(
                trigger.list_id,
                case,
                event.seq,
                event.occurred_us,
                until,
                trigger=str(event.attributes.get("trigger", "")),
                cap_us=max_total.after(event.occurred_us) if max_total else None,
            )
            spells.append(spell)
            open_by_case[slot] = spell
        elif current is None:
            continue  # leaving or extending a listing that is not in force changes nothing (explain says so)
        elif trigger.action == "leave":
            if trigger.not_before and event.occurred_us < trigger.not_before.after(current.since_us):
                current.refused_exits.append(event.seq)
                continue
            current.until_us = event.occurred_us
            current.left_seq = event.seq
        elif current.until_us is not None:  # extend a listing that has a term
            if trigger.by_attribute:
                amount = int(event.attributes.get(trigger.by_attribute, 0))
                until = current.until_us
                for _ in range(max(amount, 0)):
                    until = trigger.unit.after(until)
            else:
                until = trigger.duration.after(current.until_us)
            if current.cap_us is not None:
                until = min(until, current.cap_us)
            if until > current.until_us:
                current.until_us = until
                current.extended += 1
                current.extensions.append((event.seq, until))


# -- rules -----------------------------------------------------------------------------------


def _contributions(policy: Policy, events: list[Entry], spells: list[Spell], at_us: int,
                   clock: "_ChangePoints") -> list[Contribution]:
    contributions: list[Contribution] = []
    counted: dict[tuple[str, int], int] = {}
    spell_by_seq = {(s.list_id, s.seq): s for s in spells}
    for event in events:
        if event.occurred_us > at_us:
            continue
        for rule in policy.rules_by_event.get(event.type, ()):
            if rule.match and not matches(rule.match, event.attributes):
                continue
            if rule.cap_count is not None:
                period = (rule.id, period_start(event.occurred_us, rule.cap_period, policy.zone))
                seen = counted.get(period, 0)
                if seen >= rule.cap_count:
                    contributions.append(Contribution(event.seq, rule, event.occurred_us, event.occurred_us, "capped", 0.0))
                    continue
                counted[period] = seen + 1
            if rule.lifetime is not None:
                until = rule.lifetime.after(event.occurred_us)
            else:
                until = listing_until(rule, event.seq, event.occurred_us, spell_by_seq)
            contributions.append(contribution_at(rule, event.seq, event.occurred_us, until, at_us, clock))
    return contributions


def listing_until(rule: CompiledRule, seq: int, occurred_us: int, spell_by_seq: dict) -> int | None:
    """When a record that counts while a listing lasts (and `until_after` beyond) stops counting."""
    spell = spell_by_seq.get((rule.until_list, seq))
    if spell is None:
        return occurred_us  # the listing never began: nothing to count
    if spell.until_us is None:
        return None
    return rule.until_after.after(spell.until_us)


def contribution_at(rule: CompiledRule, seq: int, occurred_us: int, until: int | None, at_us: int,
                    clock: "_ChangePoints") -> Contribution:
    """What a record that is not capped does at `at_us`: counts (decayed by its half-life) or has
    expired; its end is a change point."""
    if until is not None:
        clock.add(until)
    if until is None or at_us < until:
        points = rule.points
        if rule.half_life_us:
            points *= 0.5 ** ((at_us - occurred_us) / rule.half_life_us)
        return Contribution(seq, rule, occurred_us, until, "counts", points)
    return Contribution(seq, rule, occurred_us, until, "expired", 0.0)


def _sums(policy: Policy, contributions: list[Contribution], at_us: int | None = None):
    """Points per dimension and the score caps in force (at `at_us` if given, else as folded)."""
    sums = [0.0] * len(policy.dimensions)
    caps: list[float] = []
    for c in contributions:
        if at_us is None:
            if c.status != "counts":
                continue
            points = c.points
        else:
            if c.status == "capped" or not (c.until_us is None or at_us < c.until_us):
                continue
            points = c.rule.points
        if c.rule.dimension >= 0:
            sums[c.rule.dimension] += points
        if c.rule.score_cap is not None:
            caps.append(c.rule.score_cap)
    return sums, caps


def dimension_values(policy: Policy, sums: list[float], aggregates: list[float | None]) -> list[float]:
    """Each dimension's value: its aggregate (rating mean, latest value) or base, plus rule points.

    With `combine = "sum"` a points dimension is just its points; with `"weighted"` every
    dimension is clamped to its own [min, max].
    """
    values = []
    for dimension, points, aggregate in zip(policy.dimensions, sums, aggregates):
        if policy.scale.combine == "sum":
            values.append(points + (aggregate or 0.0))
        else:
            start = dimension.base if aggregate is None else aggregate
            values.append(min(max(start + points, dimension.min), dimension.max))
    return values


def _count_effects(policy: Policy, contributions: list[Contribution], sums: list[float],
                   aggregates: list[float | None], values: list[float]) -> None:
    """Each counting record's effect on the score, so that the effects add up to the change.

    A point moves the score by its dimension's factor, unless a bound stops it: a sub-score
    clamped at its range (Sesame's 0 to 100) or the score at the scale's. The records of a
    dimension then share the change it really made, in proportion to their points.
    """
    starts = _starting_values(policy, aggregates)
    factors = policy.score_factors
    moved = [value - start for value, start in zip(values, starts)]
    raw_change = sum(f * m for f, m in zip(factors, moved))
    scale = policy.scale
    start_score = _raw_score(policy, starts)
    bounded = min(max(start_score + raw_change, scale.min), scale.max) - min(max(start_score, scale.min), scale.max)
    kept = bounded / raw_change if raw_change else 0.0
    per_point = [f * (m / s if s else 0.0) * kept for f, m, s in zip(factors, moved, sums)]
    for c in contributions:
        if c.status == "counts" and c.rule.dimension >= 0:
            c.effect = c.points * per_point[c.rule.dimension]


def _starting_values(policy: Policy, aggregates: list[float | None]) -> list[float]:
    """Each dimension's value with no rule points: its aggregate (a rating mean), else its base."""
    if policy.scale.combine == "sum":
        return [aggregate or 0.0 for aggregate in aggregates]
    return [min(max(d.base if a is None else a, d.min), d.max) for d, a in zip(policy.dimensions, aggregates)]


def _raw_score(policy: Policy, values: list[float]) -> float:
    """`combine` before its bounds, caps and rounding: a linear function of the values."""
    scale = policy.scale
    if scale.combine == "sum":
        return scale.base + sum(d.weight * v for d, v in zip(policy.dimensions, values))
    weights = sum(d.weight for d in policy.dimensions)
    return scale.min + (scale.max - scale.min) * sum(
        d.weight * (v - d.min) / (d.max - d.min) for d, v in zip(policy.dimensions, values)) / weights


def combine(policy: Policy, values: list[float], caps: list[float]) -> float:
    """Dimension values to the score: the one formula every engine uses."""
    scale = policy.scale
    if scale.combine == "sum":
        total = scale.base
        for dimension, value in zip(policy.dimensions, values):
            total += dimension.weight * value
    else:
        weighted = 0.0
        weights = 0.0
        for dimension, value in zip(policy.dimensions, values):
            weighted += dimension.weight * (value - dimension.min) / (dimension.max - dimension.min)
            weights += dimension.weight
        total = scale.min + (scale.max - scale.min) * weighted / weights
    total = min(max(total, scale.min), scale.max)
    for cap in caps:
        total = min(total, cap)
    return round_half_up(total, scale.decimals)


def round_half_up(value: float, decimals: int) -> float:
    """Half-up rounding, as a resident would do it (Python's round() goes to even)."""
    factor = 10**decimals
    rounded = math.floor(value * factor + 0.5) / factor
    return int(rounded) if decimals == 0 else rounded


# -- measures --------------------------------------------------------------------------------


def _measure_active(policy, measure: CompiledMeasure, score, tier, values, listed, active_lists, at_us):
    """(applies?, when it ends: None for no known end; for one that has ended, when it did)."""
    if measure.unless_lists and listed.intersection(measure.unless_lists):
        return False, None
    kind = measure.kind
    if kind == "list":
        spells = [s for s in active_lists if s.list_id == measure.list_id]
        if not spells:
            return False, None
        ends = [s.until_us for s in spells]
        until = None if None in ends else max(ends)
        if measure.duration is not None:
            stop = measure.duration.after(min(s.since_us for s in spells))
            if at_us >= stop:
                return False, stop  # over: still a change point for the validity interval
            until = stop if until is None else min(until, stop)
        return True, until
    return _condition_holds(policy, measure, score, tier, values), None


def _condition_holds(policy, measure: CompiledMeasure, score, tier, values) -> bool:
    kind = measure.kind
    if kind == "tier":
        return tier in measure.tiers
    if kind == "score_below":
        return score < measure.threshold
    if kind == "score_at_least":
        return score >= measure.threshold
    value = round_half_up(values[measure.dimension], policy.scale.decimals)
    if kind == "dimension_below":
        return value < measure.threshold
    return value >= measure.threshold


def _lifts_at(policy, measure, events, contributions, spells, at_us) -> int | None:
    """When a score-based measure stops by itself, as records expire, if no new event comes."""
    ends = {c.until_us for c in contributions if c.status == "counts" and c.until_us is not None}
    if policy.rating_dimensions and policy.hold_negative is not None:
        ends.update(policy.hold_negative.after(e.occurred_us) for e in events if e.type == policy.ratings.event)
    for _index, event_type, _attribute, lifetime in policy.latest_dimensions:
        ends.update(lifetime.after(e.occurred_us) for e in events if e.type == event_type and e.occurred_us <= at_us)
    ends = sorted(t for t in ends if t > at_us)[:_LOOKAHEAD]
    for instant in ends:
        sums, caps = _sums(policy, contributions, instant)
        later = _ChangePoints(instant)
        ratings = _ratings(policy, events, contributions, instant, later)
        values = dimension_values(policy, sums, _aggregates(policy, events, ratings, instant, later))
        score = combine(policy, values, caps)
        listed = {s.list_id for s in spells if s.active_at(instant)}
        if measure.unless_lists and listed.intersection(measure.unless_lists):
            return instant
        if not _condition_holds(policy, measure, score, policy.tier_for(score), values):
            return instant
    return None


# -- ratings and other aggregates ------------------------------------------------------------


@dataclass(slots=True)
class Rating:
    """One rating the subject received, as it stands at the time asked about."""

    seq: int
    rater: str
    stars: int
    occurred_us: int
    category: str | None
    interaction: str
    review: str | None
    weight: float  # fixed at ingest from the rater's standing then
    why: str  # how that weight was set, in words
    multiplier: float  # penalty mode: negative ratings received during it count more
    status: str  # counts | held | disputed
    hold_until: int | None
    replies: list[tuple[int, str]]

    @property
    def effective_weight(self) -> float:
        return self.weight * self.multiplier


def _ratings(policy: Policy, events: list[Entry], contributions: list[Contribution], at_us: int,
             clock: "_ChangePoints") -> list[Rating]:
    """The ratings received up to `at_us`: weight, penalty multiplier, hold and dispute status."""
    spec = policy.ratings
    if spec is None or not policy.rating_dimensions:
        return []
    penalties = [
        (c.occurred_us, c.until_us, c.rule.negative_rating_multiplier)
        for c in contributions
        if c.rule.negative_rating_multiplier and c.status != "capped"
    ]
    disputes: dict[int, list[int]] = {}
    replies: dict[int, list[tuple[int, str]]] = {}
    for event in events:
        if event.occurred_us > at_us:
            continue
        if event.type == "peer.review_disputed":
            disputes.setdefault(event.attributes.get("entry"), []).append(event.occurred_us)
        elif event.type == "peer.review_reply":
            replies.setdefault(event.attributes.get("entry"), []).append((event.seq, event.attributes.get("text", "")))
    hold = policy.hold_negative
    ratings = []
    for event in events:
        if event.type != spec.event or event.occurred_us > at_us:
            continue
        attributes = event.attributes
        stars = attributes["stars"]
        negative = stars <= spec.negative_at_most
        multiplier = 1.0
        if negative:
            for start, end, factor in penalties:
                if start <= event.occurred_us and (end is None or event.occurred_us < end):
                    multiplier = max(multiplier, factor)
        status, hold_until = "counts", None
        if negative and hold is not None:
            hold_until = hold.after(event.occurred_us)
            clock.add(hold_until)
            # Only a dispute made during the hold keeps a review out (not one dated before it).
            if any(event.occurred_us <= when < hold_until for when in disputes.get(event.seq, ())):
                status = "disputed"
            elif at_us < hold_until:
                status = "held"
        derived = event.derived or {}
        ratings.append(Rating(
            event.seq, attributes["rater"], stars, event.occurred_us, attributes.get("category"),
            attributes["interaction"], attributes.get("review"), float(derived.get("weight", 1.0)),
            derived.get("why", "every rating weighs 1"), multiplier, status, hold_until, replies.get(event.seq, []),
        ))
    return ratings


def _aggregates(policy: Policy, events: list[Entry], ratings: list[Rating], at_us: int,
                clock: "_ChangePoints") -> list[float | None]:
    """Per dimension: the rating mean or latest value it starts from (None: a points dimension)."""
    aggregates: list[float | None] = [None] * len(policy.dimensions)
    for dim in policy.rating_dimensions:
        counted = [r for r in ratings if r.status == "counts" and (dim.category is None or r.category == dim.category)]
        if dim.window is not None:
            counted = counted[-dim.window:]  # ratings are in time order: the last N count
        total = dim.prior_mean * dim.prior_weight
        weights = dim.prior_weight
        for rating in counted:
            weight = rating.effective_weight
            if dim.half_life_us:
                weight *= 0.5 ** ((at_us - rating.occurred_us) / dim.half_life_us)
            total += weight * rating.stars
            weights += weight
        aggregates[dim.index] = total / weights if weights > 0 else dim.prior_mean
    for index, event_type, attribute, lifetime in policy.latest_dimensions:
        for event in reversed(events):
            if event.type == event_type and event.occurred_us <= at_us and attribute in event.attributes:
                until = lifetime.after(event.occurred_us)
                clock.add(until)
                if at_us < until:
                    aggregates[index] = float(event.attributes[attribute])
                break
    return aggregates


# -- reasons ---------------------------------------------------------------------------------


def _list_reason(spell: Spell) -> Reason:
    return Reason("list", spell.list_id, spell.seq, 0.0, spell.since_us, spell.until_us, spell.case)


def _rule_reason(c: Contribution) -> Reason:
    if c.rule.score_cap is not None and not c.rule.points:
        return Reason("cap", c.rule.id, c.seq, c.points, c.occurred_us, c.until_us)
    return Reason("rule", c.rule.id, c.seq, c.points, c.occurred_us, c.until_us, effect=round(c.effect, 6))


def _ranked(policy: Policy, contributions: list[Contribution], direction: int) -> list[Contribution]:
    """Counting contributions, biggest effect on the score first; direction -1 keeps the negative ones."""
    chosen = [
        c
        for c in contributions
        if c.status == "counts"
        and (direction == 0 or c.points * direction > 0 or (direction < 0 and c.rule.score_cap is not None))
    ]
    # Caps first (they override points), then by size of effect, then the most recent.
    chosen.sort(key=lambda c: (c.rule.score_cap is None, -abs(c.effect), -c.occurred_us, c.seq))
    return chosen


def _standing_reasons(policy, active_lists, contributions, ratings) -> tuple[Reason, ...]:
    reasons = [_list_reason(s) for s in sorted(active_lists, key=lambda s: (s.since_us, s.seq))]
    reasons.extend(_rule_reason(c) for c in _ranked(policy, contributions, 0))
    reasons.extend(_rating_reasons(policy, ratings, -1, -1, _RATING_REASONS))
    reasons.extend(_rating_reasons(policy, ratings, 1, -1, _RATING_REASONS))
    return tuple(reasons)


_RATING_REASONS = 4  # of each direction among a standing's reasons: the ratings that weigh most


def _rating_reasons(policy: Policy, ratings: list[Rating], direction: int, dimension: int, limit: int) -> list[Reason]:
    """The counted ratings that pull a rating dimension down (-1) or up (+1) the most.

    Pull = weight × distance of the stars from the dimension's prior: a one-star rating from
    a heavy rater pulls hardest. `dimension` -1 means any rating dimension.
    """
    pulls = []
    for dim in policy.rating_dimensions:
        if dimension >= 0 and dim.index != dimension:
            continue
        for rating in ratings:
            if rating.status != "counts" or (dim.category is not None and rating.category != dim.category):
                continue
            pull = rating.effective_weight * (rating.stars - dim.prior_mean) * direction
            if pull > 0:
                pulls.append((-pull, -rating.occurred_us, rating.seq, dim, rating))
    pulls.sort(key=lambda item: item[:3])
    chosen, seen = [], set()
    for _, _, seq, dim, rating in pulls:
        if seq not in seen:
            seen.add(seq)
            chosen.append(Reason("rating", policy.dimensions[dim.index].id, seq, float(rating.stars),
                                 rating.occurred_us, None, None, float(f"{rating.effective_weight:g}")))
        if len(chosen) == limit:
            break
    return chosen


def _measure_reasons(policy: Policy, measure: CompiledMeasure, active_lists, contributions,
                     ratings) -> tuple[Reason, ...]:
    if measure.kind == "list":
        spells = sorted(
            (s for s in active_lists if s.list_id == measure.list_id), key=lambda s: (s.since_us, s.seq)
        )
        return tuple(_list_reason(s) for s in spells[:4])
    direction = -1 if _is_adverse_condition(policy, measure) else 1
    relevant = [
        _rule_reason(c)
        for c in _ranked(policy, contributions, direction)
        if measure.dimension < 0 or c.rule.dimension == measure.dimension
    ]
    relevant += _rating_reasons(policy, ratings, direction, measure.dimension, 4) if len(relevant) < 4 else []
    return tuple(relevant[:4])


def _is_adverse_condition(policy: Policy, measure: CompiledMeasure) -> bool:
    """True when the condition is about a low score (so the reasons are what pulled it down)."""
    if measure.kind in ("score_below", "dimension_below"):
        return True
    if measure.kind == "tier":
        base_tier = policy.tier_for(policy.scale.base)
        return base_tier not in measure.tiers and all(
            (policy.tier_floor(t) or -math.inf) < policy.scale.base for t in measure.tiers
        )
    return False


class _ChangePoints:
    """Tracks the last instant <= at and the first instant > at where anything changes."""

    __slots__ = ("at", "before", "after")

    def __init__(self, at_us: int):
        self.at = at_us
        self.before: int | None = None
        self.after: int | None = None

    def add(self, instant: int) -> None:
        if instant <= self.at:
            if self.before is None or instant > self.before:
                self.before = instant
        elif self.after is None or instant < self.after:
            self.after = instant
