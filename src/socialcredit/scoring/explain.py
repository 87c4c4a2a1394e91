"""A standing in words a resident understands, and as the plain data every interface prints.

`core` is what the registry materializes: the stored standing of a subject is exactly
`core(fold(...))`, which is what the property tests compare; `expand` puts it in words.
"""

from __future__ import annotations

from ..policy.compiled import Policy
from ..instants import format_day, format_instant
from .fold import Reason, Standing


def _day(instant: int | None, policy: Policy) -> str | None:
    """A date as the policy's residents read it: in the policy's time zone."""
    return None if instant is None else format_day(instant, policy.zone)


def _number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if decimals else f"{value:g}"


def _signed(value: float, decimals: int) -> str:
    text = _number(abs(value), decimals)
    return f"+{text}" if value >= 0 else f"\u2212{text}"


def reason_text(policy: Policy, reason: tuple) -> str:
    """One reason in words. `reason` is the stored form: see `core`."""
    kind, ident, seq, points, occurred_us, until_us, case = reason
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
        weight = float(case)
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
        f"{_signed(points, decimals)} {_unit(policy, points)}{_on_dimension(policy, rule, points)}: {rule.describe} "
        f"(record #{seq}, {_day(occurred_us, policy)}); {until}."
    )


def _on_dimension(policy: Policy, rule, points: float) -> str:
    """Where points land when that is not simply the score: the sub-score and its effect."""
    if rule.dimension < 0 or (len(policy.dimensions) == 1 and policy.score_factors[rule.dimension] == 1):
        return ""
    dimension = policy.dimensions[rule.dimension]
    effect = points * policy.score_factors[rule.dimension]
    return (f" on {dimension.label.lower()} (about {_signed(round(effect, 1), 1 if effect % 1 else 0)} "
            f"on the score)")


def _unit(policy: Policy, amount: float) -> str:
    """`points`, but `1 point`."""
    unit = policy.scale.unit
    return unit[:-1] if abs(amount) == 1 and unit.endswith("s") else unit


def _prior(policy: Policy, dimension_id: str) -> float:
    return policy.dimensions[policy.dimension_index[dimension_id]].prior_mean


def reason_dict(policy: Policy, reason: tuple) -> dict:
    kind, ident, seq, points, occurred_us, until_us, case = reason
    if kind == "rating":
        return {"kind": "rating", "dimension": ident, "entry": seq, "stars": int(points), "weight": float(case),
                "occurred_at": format_instant(occurred_us), "until": None, "text": reason_text(policy, reason)}
    item = {
        "kind": kind,
        ("list" if kind == "list" else "rule"): ident,
        "entry": seq,
        "occurred_at": format_instant(occurred_us),
        "until": _instant(until_us),
        "text": reason_text(policy, reason),
    }
    if kind == "rule":
        item["points"] = points
    if kind == "list":
        item["case"] = None if case == "*" else case
    return item


def measure_dict(policy: Policy, measure_id: str, until_us: int | None, reasons=None) -> dict:
    """A measure in words; with `reasons=None` (a decision's list) the reasons are left out."""
    measure = policy.measures_by_id[measure_id]
    item = {
        "id": measure.id,
        "service": measure.service,
        "effect": measure.effect,
        "until": _instant(until_us),
        "notice": measure.notice,
        "remedy": measure.remedy,
        "legal_basis": measure.legal_basis,
    }
    if reasons is not None:
        item["reasons"] = [reason_dict(policy, r) for r in reasons]
    return item


def _reason_tuple(reason: Reason) -> list:
    return [reason.kind, reason.ident, reason.seq, reason.points, reason.occurred_us, reason.until_us, reason.case]


def core(standing: Standing) -> dict:
    """The standing as compact plain data: what the registry materializes and compares.

    Instants stay integers and reasons stay tuples (kind, rule or list, entry, points,
    occurred, until, case): the words are added when someone reads it (`expand`).
    """
    return {
        "score": standing.score,
        "tier": standing.tier,
        "dimensions": list(standing.dimensions),
        "lists": [[s.list_id, s.case, s.seq, s.since_us, s.until_us] for s in standing.active_lists],
        "measures": [[m.measure.id, m.until_us, [_reason_tuple(r) for r in m.reasons]] for m in standing.measures],
        "reasons": [_reason_tuple(r) for r in standing.reasons],
        "policy": standing.policy.digest,
        "valid_from": standing.valid_from_us,
        "valid_until": standing.valid_until_us,
    }


def expand(policy: Policy, data: dict) -> dict:
    """The compact standing in full words: what is printed and served."""
    return {
        "score": data["score"],
        "tier": data["tier"],
        "dimensions": {d.id: v for d, v in zip(policy.dimensions, data["dimensions"])},
        "lists": [
            {"list": list_id, "case": None if case == "*" else case, "entry": seq,
             "since": format_instant(since), "until": _instant(until)}
            for list_id, case, seq, since, until in data["lists"]
        ],
        "measures": [measure_dict(policy, mid, until, reasons) for mid, until, reasons in data["measures"]],
        "reasons": [reason_dict(policy, r) for r in data["reasons"]],
        "policy": policy.ref(),
        "valid_from": _instant(data["valid_from"]),
        "valid_until": _instant(data["valid_until"]),
    }


def summarize(standing: Standing) -> dict:
    """The standing as plain data with every reason in words."""
    return expand(standing.policy, core(standing))


def _instant(instant: int | None) -> str | None:
    return None if instant is None else format_instant(instant)


def rating_dict(policy: Policy, rating) -> dict:
    """One rating received, as its subject sees it: stars, weight and why, status."""
    return {
        "entry": rating.seq,
        "rater": rating.rater,
        "stars": rating.stars,
        "category": rating.category,
        "interaction": rating.interaction,
        "review": rating.review,
        "occurred_at": format_instant(rating.occurred_us),
        "weight": rating.effective_weight,
        "why_this_weight": _weight_words(rating),
        "status": rating.status,
        "held": rating.status == "held",
        "hold_until": _instant(rating.hold_until),
        "explanation": _rating_status_words(policy, rating),
        "replies": [{"entry": seq, "text": text} for seq, text in rating.replies],
    }


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


def _rating_effect(policy: Policy, rating) -> dict:
    stars = "\u2605" * rating.stars + "\u2606" * (5 - rating.stars)
    text = (f"{stars} {rating.stars} star{'s' if rating.stars != 1 else ''}, weight {rating.effective_weight:g} "
            f"({_weight_words(rating)}); {_rating_status_words(policy, rating)}.")
    return {"status": f"rating-{rating.status}", "stars": rating.stars, "weight": rating.effective_weight, "text": text}


def explain_entries(standing: Standing) -> list[dict]:
    """Every entry about the subject and what it does now, in words."""
    policy = standing.policy
    decimals = policy.scale.decimals
    by_seq: dict[int, list] = {}
    for c in standing.contributions:
        by_seq.setdefault(c.seq, []).append(c)
    listed_by = {s.seq: s for s in standing.spells}
    rated = {r.seq: r for r in standing.ratings}
    left_by = {s.left_seq: s for s in standing.spells if s.left_seq is not None}
    items = []
    for event in standing.events:
        described = policy.event_types[event.type].description if event.type in policy.event_types else event.type
        item = {
            "entry": event.seq,
            "type": event.type,
            "occurred_at": format_instant(event.occurred_us),
            "what": described,
            "effects": [],
        }
        if event.occurred_us > standing.at_us:
            item["effects"].append({"status": "later", "text": "Happens after the time asked about; not counted yet."})
        for c in by_seq.get(event.seq, []):
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
            item["effects"].append({"status": c.status, "rule": c.rule.id, "points": c.points, "text": text})
        if event.seq in rated:
            item["effects"].append(_rating_effect(policy, rated[event.seq]))
        spell = listed_by.get(event.seq)
        if spell is not None:
            label = policy.lists[spell.list_id].label
            state = "still in force" if spell.active_at(standing.at_us) else f"ended {_day(spell.until_us, policy)}"
            item["effects"].append({"status": "listed", "list": spell.list_id, "text": f"Put you on the {label} ({state})."})
        spell = left_by.get(event.seq)
        if spell is not None:
            label = policy.lists[spell.list_id].label
            item["effects"].append({"status": "delisted", "list": spell.list_id, "text": f"Took you off the {label}."})
        for spell in standing.spells:
            for seq, until in spell.extensions:
                if seq == event.seq:
                    label = policy.lists[spell.list_id].label
                    item["effects"].append({"status": "extended", "list": spell.list_id,
                                            "text": f"Extended your stay on the {label} to {_day(until, policy)}."})
        for spell in standing.spells:
            if event.seq in spell.refused_exits:
                item["effects"].append(
                    {"status": "too-early", "list": spell.list_id,
                     "text": "Asked to end a listing before its minimum period had passed; the listing stays."}
                )
        if not item["effects"]:
            item["effects"].extend(_unmatched_list_effects(policy, event))
        if not item["effects"]:
            item["effects"].append({"status": "no-effect", "text": "Recorded; it does not change anything under this policy."})
        items.append(item)
    for event in standing.cancelled:
        void = standing.voided[event.seq]
        described = policy.event_types[event.type].description if event.type in policy.event_types else event.type
        items.append(
            {
                "entry": event.seq,
                "type": event.type,
                "occurred_at": format_instant(event.occurred_us),
                "what": f"{described} (cancelled)",
                "effects": [{"status": "voided", "text": f"Cancelled by record #{void.seq}: {void.reason}. It no longer counts."}],
            }
        )
    return items


def _unmatched_list_effects(policy: Policy, event) -> list[dict]:
    """A leave or extend event that found no listing in force: say so, naming the case."""
    effects = []
    for trigger in policy.list_triggers_by_event.get(event.type, ()):
        if trigger.action == "enter":
            continue
        case = event.attributes.get(trigger.case_attribute) if trigger.case_attribute else None
        label = policy.lists[trigger.list_id].label
        for_case = f" for case {case}" if case else ""
        effects.append({"status": "no-listing", "list": trigger.list_id,
                        "text": f"You were not on the {label}{for_case} at the time: this changed nothing."})
    return effects


def _period_words(period: str | None) -> str:
    return {"P1D": "day", "P1W": "week", "P1M": "calendar month", "P1Y": "calendar year"}.get(period or "", "period")
