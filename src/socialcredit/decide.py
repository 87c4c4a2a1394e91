"""Measures → a decision: may this subject use this service, and why (or why not).

One function, `decide`, used by live checks and by replays alike, so a replay that comes
out different can only mean the inputs differ.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .policy.compiled import Policy

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


def decide(policy: Policy, measures_by_id: dict[str, dict], service: str) -> tuple[bool, str, list[dict], list[dict]]:
    """(allowed, effect, the measures that applied, up to four ranked reasons).

    A deny anywhere above the service wins; otherwise the first favourable measure (in
    policy order) gives the effect; with no measure the service is simply allowed.
    """
    applied = [measures_by_id[m.id] for m in policy.measures_for_service(service) if m.id in measures_by_id]
    if not applied:
        return True, "allow", [], []
    denials = [m for m in applied if m["effect"] == "deny"]
    if denials:
        allowed, effect, deciding = False, "deny", denials
    else:
        allowed, effect, deciding = True, applied[0]["effect"], applied
    reasons: list[dict] = []
    seen: set[tuple] = set()
    for measure in deciding:
        for reason in measure["reasons"]:
            key = (reason["kind"], reason.get("rule") or reason.get("list"), reason["entry"])
            if key not in seen:
                seen.add(key)
                reasons.append(reason)
    return allowed, effect, [_public(m) for m in applied], reasons[:MAX_REASONS]


def _public(measure: dict) -> dict:
    return {k: v for k, v in measure.items() if k != "reasons"}
