"""A standing in words a resident understands, and as the plain dict every interface prints.

`summarize` is also what the registry materializes: the stored standing of a subject is
exactly `summarize(fold(...))`, which is what the property tests compare.
"""

from __future__ import annotations

from ..policy.compiled import Policy
from .._time import format_day, format_instant
from .fold import Reason, Standing


def _day(instant: int | None) -> str | None:
    return None if instant is None else format_day(instant)


def _number(value: float, decimals: int) -> str:
    return f"{value:.{decimals}f}" if decimals else f"{value:g}"


def _signed(value: float, decimals: int) -> str:
    text = _number(abs(value), decimals)
    return f"+{text}" if value >= 0 else f"\u2212{text}"


def reason_text(policy: Policy, reason: Reason) -> str:
    decimals = policy.scale.decimals
    if reason.kind == "list":
        spec = policy.lists[reason.ident]
        case = "" if reason.case in (None, "*") else f", case {reason.case}"
        end = (
            f"until {_day(reason.until_us)} unless it is lifted sooner"
            if reason.until_us is not None
            else "with no end date: it lasts until you do what lifts it"
        )
        return f"On the {spec.label} since {_day(reason.occurred_us)} (record #{reason.seq}{case}), {end}."
    rule = policy.rules_by_id[reason.ident]
    until = (
        f"counts until {_day(reason.until_us)}"
        if reason.until_us is not None
        else "counts until the listing it belongs to ends"
    )
    if reason.kind == "cap":
        return (
            f"Your score is held at {_number(rule.score_cap, decimals)} or lower because of "
            f"{rule.describe} (record #{reason.seq}, {_day(reason.occurred_us)}); this {until}."
        )
    return (
        f"{_signed(reason.points, decimals)} {policy.scale.unit}: {rule.describe} "
        f"(record #{reason.seq}, {_day(reason.occurred_us)}); {until}."
    )


def reason_dict(policy: Policy, reason: Reason) -> dict:
    item = {
        "kind": reason.kind,
        ("list" if reason.kind == "list" else "rule"): reason.ident,
        "entry": reason.seq,
        "occurred_at": format_instant(reason.occurred_us),
        "until": None if reason.until_us is None else format_instant(reason.until_us),
        "text": reason_text(policy, reason),
    }
    if reason.kind == "rule":
        item["points"] = reason.points
    if reason.kind == "list":
        item["case"] = None if reason.case == "*" else reason.case
    return item


def summarize(standing: Standing) -> dict:
    """The standing as plain data: what is stored, printed and served."""
    policy = standing.policy
    return {
        "score": standing.score,
        "tier": standing.tier,
        "dimensions": {d.id: v for d, v in zip(policy.dimensions, standing.dimensions)},
        "lists": [
            {
                "list": s.list_id,
                "case": None if s.case == "*" else s.case,
                "entry": s.seq,
                "since": format_instant(s.since_us),
                "until": None if s.until_us is None else format_instant(s.until_us),
            }
            for s in standing.active_lists
        ],
        "measures": [
            {
                "id": m.measure.id,
                "service": m.measure.service,
                "effect": m.measure.effect,
                "until": None if m.until_us is None else format_instant(m.until_us),
                "notice": m.measure.notice,
                "remedy": m.measure.remedy,
                "legal_basis": m.measure.legal_basis,
                "reasons": [reason_dict(policy, r) for r in m.reasons],
            }
            for m in standing.measures
        ],
        "reasons": [reason_dict(policy, r) for r in standing.reasons],
        "policy": {"id": policy.id, "version": policy.version, "digest": policy.digest},
        "valid_from": None if standing.valid_from_us is None else format_instant(standing.valid_from_us),
        "valid_until": None if standing.valid_until_us is None else format_instant(standing.valid_until_us),
    }


def explain_entries(standing: Standing) -> list[dict]:
    """Every entry about the subject and what it does now, in words."""
    policy = standing.policy
    decimals = policy.scale.decimals
    by_seq: dict[int, list] = {}
    for c in standing.contributions:
        by_seq.setdefault(c.seq, []).append(c)
    listed_by = {s.seq: s for s in standing.spells}
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
            until = "while the listing lasts" if c.until_us is None else f"until {_day(c.until_us)}"
            if c.status == "counts":
                if c.rule.score_cap is not None and not c.rule.points:
                    text = f"Holds your score at {_number(c.rule.score_cap, decimals)} or lower {until}."
                else:
                    text = f"{_signed(c.points, decimals)} {policy.scale.unit} ({c.rule.describe}), counts {until}."
            elif c.status == "expired":
                text = f"No longer counts: it stopped counting on {_day(c.until_us)}."
            else:
                text = f"Does not count: the rule counts at most {c.rule.cap_count} of these per {_period_words(c.rule.cap_period)}."
            item["effects"].append({"status": c.status, "rule": c.rule.id, "points": c.points, "text": text})
        spell = listed_by.get(event.seq)
        if spell is not None:
            label = policy.lists[spell.list_id].label
            state = "still in force" if spell.active_at(standing.at_us) else f"ended {_day(spell.until_us)}"
            item["effects"].append({"status": "listed", "list": spell.list_id, "text": f"Put you on the {label} ({state})."})
        spell = left_by.get(event.seq)
        if spell is not None:
            label = policy.lists[spell.list_id].label
            item["effects"].append({"status": "delisted", "list": spell.list_id, "text": f"Took you off the {label}."})
        for spell in standing.spells:
            if event.seq in spell.refused_exits:
                item["effects"].append(
                    {"status": "too-early", "list": spell.list_id,
                     "text": "Asked to end a listing before its minimum period had passed; the listing stays."}
                )
        if not item["effects"]:
            item["effects"].append({"status": "no-effect", "text": "Recorded; it does not change anything under this policy."})
        items.append(item)
    for target, void in sorted(standing.voided.items()):
        items.append(
            {
                "entry": target,
                "type": None,
                "occurred_at": None,
                "what": "cancelled record",
                "effects": [{"status": "voided", "text": f"Cancelled by record #{void.seq}: {void.reason}"}],
            }
        )
    return items


def _period_words(period: str | None) -> str:
    return {"P1D": "day", "P1W": "week", "P1M": "calendar month", "P1Y": "calendar year"}.get(period or "", "period")
