"""Ratings at the ingest boundary: who may rate whom, abuse limits, and the rater's weight.

A rating's weight is fixed here, once, from the rater's standing as the registry knew it
before the batch, and stored with the entry (so the Merkle tree covers it and a replay sees
the same weight). That keeps every standing a cheap, non-recursive fold of its own entries.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..instants import US_PER_SECOND, format_day, period_start
from ..intake.validation import ValidEvent
from ..ledger.entries import EVENT, VOID, Entry
from ..policy.compiled import Policy
from ..scoring.engine import Engine
from ..scoring.fold import round_half_up

OPT_IN = "peer.opt_in"
OPT_OUT = "peer.opt_out"
_HOUR_US = 3_600 * US_PER_SECOND


@dataclass
class Assessment:
    derived: dict[int, dict]  # index in the batch → what the registry fixes in the entry
    errors: dict[int, str]  # index in the batch → why the rating is refused


def assess(policy: Policy, batch: list[ValidEvent], histories: dict[str, list[Entry]],
           given: dict[str, list[Entry]], engine: Engine) -> Assessment:
    """Check every rating in `batch` (in order) and fix the weight of the acceptable ones.

    `histories` holds the entries of every rater and ratee in the batch as the ledger held
    them before it (`people_in`); `given` the ratings each rater gave and the voids that name
    them (`raters_in`). Nothing here reads a database.
    """
    spec = policy.ratings
    result = Assessment({}, {})
    if spec is None:
        return result
    ratings = [(i, e) for i, e in enumerate(batch) if e.type == spec.event]
    if not ratings:
        return result
    histories = {s: _live(h) for s, h in histories.items()}
    enrolment = _Enrolment(histories, batch)
    seen_interactions: dict[tuple[str, str, str], int] = {}
    given_today: dict[tuple[str, int], int] = {}
    weights = _Weights(policy, engine, histories, given)
    for index, event in ratings:
        rater, ratee = event.attributes["rater"], event.subject
        interaction = event.attributes["interaction"]
        when = event.occurred_us
        if rater == ratee:
            result.errors[index] = "a subject cannot rate themself"
            continue
        if not enrolment.enrolled(rater, when, index):
            result.errors[index] = f"the rater has not opted in to rating ({OPT_IN}) or has opted out"
            continue
        if spec.ratee_consent and not enrolment.enrolled(ratee, when, index):
            result.errors[index] = f"the rated subject has not consented to be rated (no {OPT_IN})"
            continue
        earlier = _earlier_rating(histories.get(ratee, []), spec.event, rater, interaction)
        key = (rater, ratee, interaction)
        if earlier is not None or key in seen_interactions:
            where = f"entry #{earlier}" if earlier is not None else f"line {batch[seen_interactions[key]].line}"
            result.errors[index] = f"this rater already rated this subject for interaction {interaction!r} ({where})"
            continue
        day = period_start(when, "P1D", policy.zone)
        next_day = period_start(day + 26 * _HOUR_US, "P1D", policy.zone)  # local days last 23 to 25 hours
        today = given_today.get((rater, day))
        if today is None:
            today = sum(1 for _, occurred, _ in weights.given(rater) if day <= occurred < next_day)
        if today >= spec.daily_cap:
            result.errors[index] = f"the rater reached the daily cap of {spec.daily_cap} ratings on {format_day(day, policy.zone)}"
            continue
        given_today[(rater, day)] = today + 1
        seen_interactions[key] = index
        result.derived[index] = weights.weigh(rater, when)
        weights.note_given(rater, when, event.attributes)
    return result


def people_in(policy: Policy, batch: list[ValidEvent]) -> list[str]:
    """The raters and ratees of the batch's ratings: whose histories `assess` needs."""
    spec = policy.ratings
    if spec is None:
        return []
    ratings = [e for e in batch if e.type == spec.event]
    return sorted({e.attributes["rater"] for e in ratings} | {e.subject for e in ratings})


def raters_in(policy: Policy, batch: list[ValidEvent]) -> list[str]:
    """The raters of the batch's ratings: whose given ratings `assess` needs."""
    spec = policy.ratings
    if spec is None:
        return []
    return sorted({e.attributes["rater"] for e in batch if e.type == spec.event})


def _live(history: list[Entry]) -> list[Entry]:
    voided = {e.target for e in history if e.kind == VOID}
    return [e for e in history if e.kind == EVENT and e.seq not in voided]


def _earlier_rating(history: list[Entry], rating_type: str, rater: str, interaction: str) -> int | None:
    for entry in history:
        if entry.type == rating_type and entry.attributes.get("rater") == rater and \
                entry.attributes.get("interaction") == interaction:
            return entry.seq
    return None


class _Enrolment:
    """Opted in or out at a time: the latest opt event by then, the ledger's and the batch's."""

    def __init__(self, histories: dict[str, list[Entry]], batch: list[ValidEvent]):
        self._events: dict[str, list[tuple[int, int, bool]]] = {}
        for subject, history in histories.items():
            for entry in history:
                if entry.type in (OPT_IN, OPT_OUT):
                    # At the same instant the later record wins: the ledger's in seq order...
                    self._events.setdefault(subject, []).append((entry.occurred_us, 0, entry.seq, entry.type == OPT_IN))
        for position, event in enumerate(batch):
            if event.type in (OPT_IN, OPT_OUT):
                # ...then the batch's, in the batch's order.
                self._events.setdefault(event.subject, []).append((event.occurred_us, 1, position, event.type == OPT_IN))

    def enrolled(self, subject: str, at_us: int, position: int) -> bool:
        # Opt events later in the batch than the rating do not count for it.
        known = [e for e in self._events.get(subject, ()) if e[0] <= at_us and (e[1] == 0 or e[2] < position)]
        return max(known)[3] if known else False


class _Weights:
    """The rater's weight from their standing then, by the policy's documented formula."""

    def __init__(self, policy: Policy, engine: Engine, histories: dict[str, list[Entry]],
                 given: dict[str, list[Entry]]):
        self.policy = policy
        self.spec = policy.ratings
        self.engine = engine
        self.histories = histories
        self._given = {rater: _live_given(entries, self.spec.event) for rater, entries in given.items()}
        self._standings: dict[str, object] = {}

    def _standing(self, rater: str, at_us: int):
        """The rater's standing at `at_us`; reused while `at_us` stays inside its validity interval."""
        known = self._standings.get(rater)
        if known is not None and known.cacheable and (known.valid_from_us is None or known.valid_from_us <= at_us) \
                and (known.valid_until_us is None or at_us < known.valid_until_us):
            return known
        standing = self.engine.standing(self.policy, self.histories.get(rater, []), at_us, None, rater)
        self._standings[rater] = standing
        return standing

    def weigh(self, rater: str, at_us: int) -> dict:
        spec = self.spec.weight
        standing = self._standing(rater, at_us)
        if spec.source == "score":
            value, label = standing.score, "score"
        else:
            index = self.policy.dimension_index[spec.source]
            value, label = standing.dimensions[index], f"{self.policy.dimensions[index].label.lower()}"
        decimals = self.policy.scale.decimals
        shown = f"{round_half_up(value, decimals):.{decimals}f}" if decimals else f"{value:g}"
        day = format_day(at_us, self.policy.zone)
        if spec.buckets:
            chosen = [b for b in spec.buckets if value >= b.at_least]
            weight = chosen[-1].weight if chosen else 0.0
            bucket = f"at least {chosen[-1].at_least:g}" if chosen else f"below {spec.buckets[0].at_least:g}"
            why = [f"the rater's {label} was {shown} on {day}: bucket {bucket} weighs {weight:g}"]
        elif spec.linear is not None:
            line = spec.linear
            position = min(max((value - line.low) / (line.high - line.low), 0.0), 1.0)
            weight = line.weight_low + position * (line.weight_high - line.weight_low)
            why = [f"the rater's {label} was {shown} on {day}: on the line from {line.low:g} (weight "
                   f"{line.weight_low:g}) to {line.high:g} (weight {line.weight_high:g}) that weighs {weight:.3g}"]
        else:
            weight, why = 1.0, ["every rating weighs 1"]
        for list_id, factor in spec.discount_lists.items():
            if any(s.list_id == list_id for s in standing.active_lists):
                weight *= factor
                why.append(f"the rater is on the {self.policy.lists[list_id].label}: ×{factor:g}")
        if self.spec.positivity is not None:
            earlier = [a for _, occurred, a in self.given(rater) if occurred < at_us]
            positive = sum(1 for a in earlier if a["stars"] > self.spec.negative_at_most)
            total = len(earlier)
            positivity = (positive + 1) / (total + 2)
            factor = min(1.0, positivity / self.spec.positivity.neutral)
            weight *= factor
            why.append(f"reviewer positivity {positivity:.2f} ({positive} of {total} earlier reviews positive): ×{factor:.2f}")
        return {"weight": round(weight, 6), "why": "; ".join(why), "rater_value": value}

    def given(self, rater: str) -> list[tuple[int, int, dict]]:
        """The live ratings this rater gave: the ledger's, then those accepted earlier in the batch."""
        return self._given.setdefault(rater, [])

    def note_given(self, rater: str, at_us: int, attributes: dict) -> None:
        self.given(rater).append((-1, at_us, attributes))


def _live_given(entries: list[Entry], rating_type: str) -> list[tuple[int, int, dict]]:
    """(seq, occurred_us, attributes) of the ratings not cancelled: a void names the rater too."""
    voided = {e.target for e in entries if e.kind == VOID}
    return [(e.seq, e.occurred_us, e.attributes) for e in entries
            if e.kind == EVENT and e.type == rating_type and e.seq not in voided]
