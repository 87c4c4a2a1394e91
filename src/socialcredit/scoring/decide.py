"""Measures → a decision: may this subject use this service, and why (or why not).

One function, `decide`, used by live checks and by replays alike, so a replay that comes
out different can only mean the inputs differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..policy.compiled import Policy

MAX_REASONS = 4  # FCRA: an adverse decision states up to four key factors


@dataclass(slots=True)
class Decision:
    decision_id: str
    subject: str
    service: str
    at: str
    allowed: bool
    effect: str
    measures: list[dict]
    reasons: list[dict]
    policy: dict
    ledger_size: int
    score: float | None = None
    tier: str | None = None
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {
            "decision_id": self.decision_id,
            "allowed": self.allowed,
            "effect": self.effect,
            "service": self.service,
            "at": self.at,
            "measures": self.measures,
            "reasons": self.reasons,
            "policy": self.policy,
            "ledger_size": self.ledger_size,
            "score": self.score,
            "tier": self.tier,
        }


def decide(policy: Policy, active: dict[str, tuple], service: str) -> tuple[bool, str, list[tuple], list]:
    """(allowed, effect, the measures that applied, up to four ranked reasons).

    `active` maps the id of each measure in force to (until, reasons), as the fold's compact
    form (`scoring.explain.core`) stores it. A deny anywhere above the service wins;
    otherwise the first favourable measure (in policy order) gives the effect; with no
    measure the service is simply allowed.
    """
    applied = [(m.id, *active[m.id]) for m in policy.measures_for_service(service) if m.id in active]
    if not applied:
        return True, "allow", applied, []
    denials = [a for a in applied if policy.measures_by_id[a[0]].effect == "deny"]
    if denials:
        allowed, effect, deciding = False, "deny", denials
    else:
        allowed, effect, deciding = True, policy.measures_by_id[applied[0][0]].effect, applied
    reasons: list = []
    seen: set[tuple] = set()
    for _id, _until, measure_reasons in deciding:
        for reason in measure_reasons:
            key = (reason[0], reason[2])
            if key not in seen:
                seen.add(key)
                reasons.append(reason)
    return allowed, effect, applied, reasons[:MAX_REASONS]
