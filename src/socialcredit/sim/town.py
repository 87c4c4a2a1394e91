"""A synthetic town: residents, businesses and a year of events drawn from a policy's catalog.

Rates are per subject per year and deliberately plausible rather than measured: most people
have a few traffic tickets and late bills, a few have court cases, a handful do something
heroic. Each subject gets a propensity (a gamma-distributed multiplier), so misconduct
clusters the way it does in real records. Everything is drawn from one `random.Random(seed)`,
so the same seed and the same end date give the same town.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date

from ..instants import US_PER_SECOND, format_instant
from ..intake.identity import make_resident_id, make_uscc
from ..policy.compiled import Policy

DAY_US = 86_400 * US_PER_SECOND

# Events per subject per year. Types a pack has but this table lacks get DEFAULT_RATE.
PERSON_RATES = {
    "finance.bank_arrears": 0.25,
    "finance.contract_breach": 0.03,
    "finance.private_lending_breach": 0.01,
    "finance.illegal_fundraising": 0.001,
    "court.breach_judgment": 0.006,
    "court.debt_liability": 0.006,
    "court.utility_arrears": 0.004,
    "commerce.fraud": 0.002,
    "commerce.counterfeit_goods": 0.001,
    "commerce.other_dishonesty": 0.01,
    "utility.late_payment": 0.25,
    "utility.heating_tapping": 0.004,
    "utility.theft": 0.002,
    "utility.equipment_damage": 0.001,
    "traffic.violation": 0.6,
    "traffic.drunk_driving": 0.004,
    "civic.heroic_act": 0.003,
    "civic.volunteering": 1.2,
    "civic.blood_donation": 0.15,
    "court.judgment_unfulfilled": 0.012,
    "rail.serious_misconduct": 0.002,
    "admin.penalty": 0.01,
    "finance.loan_repaid_on_time": 3.0,
    "finance.loan_overdue": 0.15,
    "finance.credit_card_overdue": 0.2,
    "commerce.purchase": 12.0,
    "commerce.bill_paid_on_time": 8.0,
    "capacity.asset_verified": 0.2,
    "capacity.income_verified": 0.3,
    "identity.phone_verified": 0.5,
    "identity.address_verified": 0.4,
    "identity.education_verified": 0.2,
    "identity.employment_verified": 0.3,
    "social.friend_high_standing": 1.0,
}
BUSINESS_RATES = {
    "finance.bank_arrears": 0.4,
    "finance.contract_breach": 0.15,
    "court.breach_judgment": 0.03,
    "court.debt_liability": 0.03,
    "commerce.fraud": 0.01,
    "commerce.counterfeit_goods": 0.02,
    "commerce.other_dishonesty": 0.08,
    "utility.late_payment": 0.3,
    "court.judgment_unfulfilled": 0.03,
    "tax.a_grade_rating": 0.3,
    "tax.late_payment": 0.1,
    "tax.late_financial_statements": 0.1,
    "admin.penalty": 0.08,
}
DEFAULT_RATE = 0.005
# What the registry reports itself, or what only answers another event: never drawn at random.
NOT_DRAWN = {"peer.rating", "peer.opt_in", "peer.opt_out", "peer.review_reply", "peer.review_disputed",
             "peer.trust", "peer.collusion_flag"}
RATINGS_GIVEN_PER_YEAR = 24  # per enrolled resident, in a ratings pack
STARS = ([1, 2, 3, 4, 5], [0.06, 0.08, 0.16, 0.35, 0.35])
# Events that end something rather than happen by themselves: drawn as follow-ups.
FOLLOW_UP_SHARE = 0.6


@dataclass(frozen=True, slots=True)
class Subject:
    ref: str
    kind: str


def build_subjects(rng: random.Random, residents: int, businesses: int) -> list[Subject]:
    subjects: list[Subject] = []
    seen: set[str] = set()
    regions = ["371082", "371002", "370602", "110105", "310104"]  # Rongcheng first
    while len(subjects) < residents:
        birth = date(rng.randint(1945, 2007), rng.randint(1, 12), rng.randint(1, 28))
        ref = make_resident_id(rng.choice(regions), birth, f"{rng.randint(0, 999):03d}")
        if ref not in seen:
            seen.add(ref)
            subjects.append(Subject(ref, "person"))
    alphabet = "0123456789ABCDEFGHJKLMNPQRTUWXY"
    while len(subjects) < residents + businesses:
        body = "91" + "371082" + "".join(rng.choice(alphabet) for _ in range(9))
        ref = make_uscc(body)
        if ref not in seen:
            seen.add(ref)
            subjects.append(Subject(ref, "organization"))
    return subjects


def generate_events(policy: Policy, subjects: list[Subject], start_us: int, end_us: int,
                    rng: random.Random) -> list[dict]:
    """A year (start..end) of events for every subject, sorted by time, as JSONL-ready dicts."""
    follow_ups = _follow_up_types(policy)
    events: list[dict] = []
    span = end_us - start_us
    for subject in subjects:
        propensity = rng.gammavariate(0.6, 1 / 0.6)  # mean 1, long tail
        rates = PERSON_RATES if subject.kind == "person" else BUSINESS_RATES
        for event_type, spec in policy.event_types.items():
            if event_type in follow_ups or event_type in NOT_DRAWN or subject.kind not in spec.subject_kinds:
                continue
            rate = rates.get(event_type, DEFAULT_RATE if subject.kind == "person" else 0.0)
            positive = _is_positive(policy, event_type)
            expected = rate * (1.0 if positive else propensity)
            for _ in range(_poisson(rng, expected)):
                occurred = start_us + int(rng.random() * span)
                attributes = _attributes(policy, event_type, rng)
                events.append(_event(subject, event_type, occurred, attributes))
                for follow_type, case_attribute in _endings(policy, event_type, attributes):
                    if rng.random() < FOLLOW_UP_SHARE:
                        later = occurred + rng.randint(20, 300) * DAY_US
                        if later < end_us:
                            follow = _attributes(policy, follow_type, rng)
                            if case_attribute:
                                follow[case_attribute] = attributes.get(case_attribute)
                            events.append(_event(subject, follow_type, later, follow))
    if policy.ratings is not None:
        events.extend(_ratings(policy, subjects, start_us, end_us, rng))
    events.sort(key=lambda e: e["occurred_at"])
    for number, event in enumerate(events):
        event["key"] = f"demo-{number:07d}"
    return events


def _ratings(policy: Policy, subjects: list[Subject], start_us: int, end_us: int, rng: random.Random) -> list[dict]:
    """Everyone joins the app on the first day, then rates a few others a month.

    Each resident has a temperament (a tendency to give more or fewer stars), so some
    are rated down more than others and the weights of their ratings spread out.
    """
    people = [s for s in subjects if s.kind == "person" and "person" in policy.event_types["peer.opt_in"].subject_kinds]
    events = [_event(p, "peer.opt_in", start_us, _attributes(policy, "peer.opt_in", rng)) for p in people]
    likeable = {p.ref: rng.gauss(0, 0.8) for p in people}
    span = end_us - start_us - DAY_US
    for rater in people:
        for number in range(_poisson(rng, RATINGS_GIVEN_PER_YEAR)):
            ratee = rng.choice(people)
            if ratee is rater:
                continue
            stars = min(5, max(1, round(rng.choices(*STARS)[0] + likeable[ratee.ref])))
            attributes = _attributes(policy, policy.ratings.event, rng)
            attributes.update(rater=rater.ref, stars=stars, interaction=f"meet-{number}")
            events.append(_event(ratee, policy.ratings.event, start_us + DAY_US + int(rng.random() * span), attributes))
    return events


def _event(subject: Subject, event_type: str, occurred_us: int, attributes: dict) -> dict:
    return {
        "subject": subject.ref,
        "subject_kind": subject.kind,
        "type": event_type,
        "occurred_at": format_instant(occurred_us - occurred_us % US_PER_SECOND),
        "provider": event_type.split(".", 1)[0] + "-registry",
        "key": "",
        "attributes": attributes,
    }


def _follow_up_types(policy: Policy) -> set[str]:
    """Event types that only make sense after another one (leaving a list, extending it)."""
    types = set()
    for spec in policy.lists.values():
        types.update(t.event for t in spec.leave)
        types.update(t.event for t in spec.extend)
    entering = {t.event for spec in policy.lists.values() for t in spec.enter}
    return types - entering


def _endings(policy: Policy, event_type: str, attributes: dict):
    for spec in policy.lists.values():
        if any(t.event == event_type for t in spec.enter) and spec.leave:
            leave = spec.leave[0]
            yield leave.event, spec.case_attribute


def _is_positive(policy: Policy, event_type: str) -> bool:
    rules = policy.rules_by_event.get(event_type, ())
    return bool(rules) and all(r.points > 0 for r in rules)


def _attributes(policy: Policy, event_type: str, rng: random.Random) -> dict:
    attributes = {}
    for name, spec in policy.event_types[event_type].attributes.items():
        if not spec.required and rng.random() < 0.3:
            continue
        if spec.values:
            attributes[name] = rng.choice(spec.values)
        elif spec.type == "integer":
            low = int(spec.min) if spec.min is not None else 1
            high = int(spec.max) if spec.max is not None else low + 10
            attributes[name] = rng.randint(low, high)
        elif spec.type == "number":
            low = spec.min if spec.min is not None else 0.0
            high = spec.max if spec.max is not None else low + 20_000
            attributes[name] = round(rng.uniform(low, high), 2)
        elif spec.type == "boolean":
            attributes[name] = rng.random() < 0.5
        elif spec.type == "reference":
            continue  # another subject: only the ratings generator knows whom
        else:
            attributes[name] = f"{name}-{rng.randrange(16**8):08x}"
    return attributes


def _poisson(rng: random.Random, mean: float) -> int:
    # Knuth's method is fine for the small means used here.
    if mean <= 0:
        return 0
    if mean > 30:
        return max(0, round(rng.gauss(mean, mean**0.5)))
    import math

    limit, count, product = math.exp(-mean), 0, rng.random()
    while product > limit:
        count += 1
        product *= rng.random()
    return count
