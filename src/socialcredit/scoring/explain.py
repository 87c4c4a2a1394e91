"""A standing in words a resident understands, as the typed results every interface prints.

The compact standing (compact.py) is what is stored and compared; this module adds the
words: each reason as a sentence, each measure with its notice and remedy, each record
with what it does (`explain_entries`).
"""

from __future__ import annotations

from functools import lru_cache

from .. import results
from ..instants import format_day, format_instant
from ..policy.compiled import Policy
from .compact import CompactStanding, ListSpellState, MeasureState, compact
from .fold import Reason, Standing


def _day(instant: int | None, policy: Policy) -> str | None:
    """A date as the policy's residents read it: in the policy's time zone."""
    return None if instant is None else format_day(instant, policy.zone)


def _number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if decimals else f"{value:g}"


def _signed(value: float, decimals: int) -> str:
    text = _number(abs(value), decimals)
    return f"+{text}" if value >= 0 else f"\u2212{text}"


def reason_text(policy: Policy, reason: Reason) -> str:
    """One reason in words."""
    kind, ident, seq, points, occurred_us, until_us, case, weight, effect = reason
    decimals = policy.scale.decimals
    if kind == "list":
        spec = policy.lists[ident]
        case_words = "" if case in (None, "*") else f", case {case}"
        end = (
            f"until {_day(until_us, policy)} unless it is lifted sooner"
            if until_us is not None
            else "with no end date: it lasts until you do what lifts it"
        )
        return f"On the {spec.label} since {_day(occurred_us, policy)} (record #{seq}{case_words}), {end}."
    if kind == "rating":
        stars = int(points)
        return (f"A {stars}-star rating on {_day(occurred_us, policy)} (record #{seq}), weight {weight:g}: "
                f"it pulls your {policy.dimensions[policy.dimension_index[ident]].label.lower()} "
                f"{'down' if stars < _prior(policy, ident) else 'up'}.")
    rule = policy.rules_by_id[ident]
    until = f"counts until {_day(until_us, policy)}" if until_us is not None else "counts until the listing it belongs to ends"
    if kind == "cap":
        return (
            f"Your score is held at {_number(rule.score_cap, decimals)} or lower because of "
            f"{rule.describe} (record #{seq}, {_day(occurred_us, policy)}); this {until}."
        )
    return (
        f"{_signed(points, decimals)} {_unit(policy, points)}{_on_dimension(policy, rule, points, effect)}: {rule.describe} "
        f"(record #{seq}, {_day(occurred_us, policy)}); {until}."
    )


def _on_dimension(policy: Policy, rule, points: float, effect: float | None) -> str:
    """Where points land when that is not simply the score: the sub-score and its real effect
    on the score (bounds counted, so a standing's effects add up to its change)."""
    if rule.dimension < 0 or (len(policy.dimensions) == 1 and policy.score_factors[rule.dimension] == 1):
        return ""
    dimension = policy.dimensions[rule.dimension]
    if effect is None:  # a standing stored before effects were: the factor alone
        effect = points * policy.score_factors[rule.dimension]
    return (f" on {dimension.label.lower()} (about {_signed(round(effect, 1), 1 if effect % 1 else 0)} "
            f"on the score)")


def _unit(policy: Policy, amount: float) -> str:
    """`points`, but `1 point`."""
    unit = policy.scale.unit
    return unit[:-1] if abs(amount) == 1 and unit.endswith("s") else unit


def _prior(policy: Policy, dimension_id: str) -> float:
    return policy.dimensions[policy.dimension_index[dimension_id]].prior_mean


def reason_view(policy: Policy, reason: Reason) -> results.Reason:
    text = reason_text(policy, reason)
    occurred = format_instant(reason.occurred_us)
    if reason.kind == "rating":
        return results.RatingReason(reason.ident, reason.seq, int(reason.points), reason.weight, occurred, text)
    until = _instant(reason.until_us)
    if reason.kind == "list":
        return results.ListReason(reason.ident, reason.seq, occurred, until, text,
                                  None if reason.case == "*" else reason.case)
    if reason.kind == "cap":
        return results.CapReason(reason.ident, reason.seq, occurred, until, text)
    return results.RuleReason(reason.ident, reason.seq, occurred, until, text, reason.points, reason.effect)


def reason_views(policy: Policy, reasons) -> list[results.Reason]:
    return [reason_view(policy, r) for r in reasons]


def measure_in_force(policy: Policy, measure_id: str, state: MeasureState) -> results.MeasureInForce:
    m = policy.measures_by_id[measure_id]
    return results.MeasureInForce(m.id, m.service, m.effect, _instant(state.until_us), m.notice, m.remedy,
                                  m.legal_basis, reason_views(policy, state.reasons))


def applied_measure(policy: Policy, measure_id: str, until_us: int | None) -> results.AppliedMeasure:
    m = policy.measures_by_id[measure_id]
    return results.AppliedMeasure(m.id, m.service, m.effect, _instant(until_us), m.notice, m.remedy, m.legal_basis)


def list_stay(spell: ListSpellState) -> results.ListStay:
    return results.ListStay(spell.list_id, None if spell.case == "*" else spell.case, spell.seq,
                            format_instant(spell.since_us), _instant(spell.until_us))


def standing_parts(policy: Policy, standing: CompactStanding, reasons=None) -> dict:
    """The fields a standing report and an explanation share, in words.

    `reasons`: every reason of the fold (`Standing.reasons`), where the compact standing keeps
    only the top few (`compact.top_reasons`); reports and explanations list them all.
    """
    return {
        "score": standing.score if policy.scored else None,
        "tier": standing.tier,
        "dimensions": {d.id: v for d, v in zip(policy.dimensions, standing.dimensions)} if policy.scored else {},
        "lists": [list_stay(s) for s in standing.lists],
        "measures": [measure_in_force(policy, mid, state) for mid, state in standing.measures.items()],
        "reasons": reason_views(policy, standing.reasons if reasons is None else reasons),
        "policy": policy_ref(policy),
        "valid_from": _instant(standing.valid_from_us),
        "valid_until": _instant(standing.valid_until_us),
    }


def policy_ref(policy: Policy) -> results.PolicyRef:
    return _policy_ref(policy.id, policy.version, policy.digest, policy.timezone)


@lru_cache(maxsize=256)
def _policy_ref(policy_id: str, version: str, digest: str, timezone: str) -> results.PolicyRef:
    return results.PolicyRef(policy_id, version, digest, timezone)


def summarize(standing: Standing) -> dict:
    """The standing as plain data with every reason in words (for reports and tests)."""
    parts = standing_parts(standing.policy, compact(standing), standing.reasons)
    return {k: results._plain(v) for k, v in parts.items()}


def _instant(instant: int | None) -> str | None:
    return None if instant is None else format_instant(instant)


def rating_view(policy: Policy, rating) -> results.RatingView:
    """One rating received, as its subject sees it: stars, weight and why, status."""
    return results.RatingView(
        entry=rating.seq,
        rater=rating.rater,
        stars=rating.stars,
        category=rating.category,
        interaction=rating.interaction,
        review=rating.review,
        occurred_at=format_instant(rating.occurred_us),
        occurred_on=_day(rating.occurred_us, policy),
        weight=rating.effective_weight,
        why_this_weight=_weight_words(rating),
        status=rating.status,
        held=rating.status == "held",
        hold_until=_instant(rating.hold_until),
        explanation=_rating_status_words(policy, rating),
        replies=[results.Reply(seq, text) for seq, text in rating.replies],
    )


def _weight_words(rating) -> str:
    if rating.multiplier == 1:
        return rating.why
    return f"{rating.why}; received during penalty mode: negative ratings count ×{rating.multiplier:g}"


def _rating_status_words(policy: Policy, rating) -> str:
    if rating.status == "held":
        return (f"held until {_day(rating.hold_until, policy)}: visible only to you until then, and it does not count yet; "
                "you can reply or dispute it")
    if rating.status == "disputed":
        return "disputed during its hold: it does not count"
    return "counts"


def _rating_effect(policy: Policy, rating) -> results.Effect:
    stars = "\u2605" * rating.stars + "\u2606" * (5 - rating.stars)
    text = (f"{stars} {rating.stars} star{'s' if rating.stars != 1 else ''}, weight {rating.effective_weight:g} "
            f"({_weight_words(rating)}); {_rating_status_words(policy, rating)}.")
    return results.Effect(f"rating-{rating.status}", text, stars=rating.stars, weight=rating.effective_weight)


def explain_entries(standing: Standing) -> list[results.ExplainedEntry]:
    """Every entry about the subject and what it does now, in words."""
    policy = standing.policy
    by_seq: dict[int, list] = {}
    for c in standing.contributions:
        by_seq.setdefault(c.seq, []).append(c)
    listed_by = {s.seq: s for s in standing.spells}
    rated = {r.seq: r for r in standing.ratings}
    left_by = {s.left_seq: s for s in standing.spells if s.left_seq is not None}
    items = []
    for event in standing.events:
        effects: list[results.Effect] = []
        if event.occurred_us > standing.at_us:
            effects.append(results.Effect("later", "Happens after the time asked about; not counted yet."))
        effects.extend(_rule_effect(policy, c) for c in by_seq.get(event.seq, []))
        if event.seq in rated:
            effects.append(_rating_effect(policy, rated[event.seq]))
        effects.extend(_list_effects(policy, standing, event.seq, listed_by, left_by))
        if not effects:
            effects.extend(_unmatched_list_effects(policy, event))
        if not effects:
            effects.append(results.Effect("no-effect", "Recorded; it does not change anything under this policy."))
        items.append(results.ExplainedEntry(event.seq, event.type, format_instant(event.occurred_us),
                                            _day(event.occurred_us, policy), event.provider,
                                            _described(policy, event.type), effects))
    for event in standing.cancelled:
        void = standing.voided[event.seq]
        effects = [results.Effect("voided", f"Cancelled by record #{void.seq}: {void.reason}. It no longer counts.")]
        items.append(results.ExplainedEntry(event.seq, event.type, format_instant(event.occurred_us),
                                            _day(event.occurred_us, policy), event.provider,
                                            f"{_described(policy, event.type)} (cancelled)", effects))
    return items


def _described(policy: Policy, event_type: str) -> str:
    spec = policy.event_types.get(event_type)
    return spec.description if spec is not None else event_type


def _rule_effect(policy: Policy, c) -> results.Effect:
    decimals = policy.scale.decimals
    until = "while the listing lasts" if c.until_us is None else f"until {_day(c.until_us, policy)}"
    if c.status == "counts":
        if c.rule.score_cap is not None and not c.rule.points:
            text = f"Holds your score at {_number(c.rule.score_cap, decimals)} or lower {until}."
        else:
            text = f"{_signed(c.points, decimals)} {_unit(policy, c.points)} ({c.rule.describe}), counts {until}."
    elif c.status == "expired":
        text = f"No longer counts: it stopped counting on {_day(c.until_us, policy)}."
    else:
        text = f"Does not count: the rule counts at most {c.rule.cap_count} of these per {_period_words(c.rule.cap_period)}."
    return results.Effect(c.status, text, rule=c.rule.id, points=c.points)


def _list_effects(policy: Policy, standing: Standing, seq: int, listed_by: dict, left_by: dict) -> list[results.Effect]:
    effects = []
    spell = listed_by.get(seq)
    if spell is not None:
        label = policy.lists[spell.list_id].label
        state = "still in force" if spell.active_at(standing.at_us) else f"ended {_day(spell.until_us, policy)}"
        effects.append(results.Effect("listed", f"Put you on the {label} ({state}).", list=spell.list_id))
    spell = left_by.get(seq)
    if spell is not None:
        label = policy.lists[spell.list_id].label
        effects.append(results.Effect("delisted", f"Took you off the {label}.", list=spell.list_id))
    for spell in standing.spells:
        for extended_by, until in spell.extensions:
            if extended_by == seq:
                label = policy.lists[spell.list_id].label
                effects.append(results.Effect("extended", f"Extended your stay on the {label} to {_day(until, policy)}.",
                                              list=spell.list_id))
    effects.extend(results.Effect("too-early", "Asked to end a listing before its minimum period had passed; "
                                  "the listing stays.", list=spell.list_id)
                   for spell in standing.spells if seq in spell.refused_exits)
    return effects


def _unmatched_list_effects(policy: Policy, event) -> list[results.Effect]:
    """A leave or extend event that found no listing in force: say so, naming the case."""
    effects = []
    for trigger in policy.list_triggers_by_event.get(event.type, ()):
        if trigger.action == "enter":
            continue
        case = event.attributes.get(trigger.case_attribute) if trigger.case_attribute else None
        label = policy.lists[trigger.list_id].label
        for_case = f" for case {case}" if case else ""
        effects.append(results.Effect("no-listing", f"You were not on the {label}{for_case} at the time: this changed nothing.",
                                      list=trigger.list_id))
    return effects


def _period_words(period: str | None) -> str:
    return {"P1D": "day", "P1W": "week", "P1M": "calendar month", "P1Y": "calendar year"}.get(period or "", "period")
