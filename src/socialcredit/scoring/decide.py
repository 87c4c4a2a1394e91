"""Measures → a decision: may this subject use this service, and why (or why not).

One function, `decide`, used by live checks and by replays alike, so a replay that comes
out different can only mean the inputs differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

from ..policy.compiled import Policy
from .compact import MeasureState
from .fold import Reason

MAX_REASONS = 4  # FCRA: an adverse decision states up to four key factors


class Applied(NamedTuple):
    measure_id: str
    until_us: int | None


class Outcome(NamedTuple):
    allowed: bool
    effect: str  # deny, allow, or the favourable effect that applied (privilege, discount, ...)
    applied: tuple[Applied, ...]  # the measures that governed the service, in policy order
    reasons: tuple[Reason, ...]  # at most four, the deciding measures' reasons, ranked


_ALLOW = Outcome(True, "allow", (), ())


def decide(policy: Policy, active: Mapping[str, MeasureState], service: str) -> Outcome:
    """The outcome for `service` given the measures in force (`CompactStanding.measures`).

    A deny anywhere above the service wins; otherwise the first favourable measure (in
    policy order) gives the effect; with no measure the service is simply allowed.
    """
    governing = [m for m in policy.measures_for_service(service) if m.id in active]
    if not governing:
        return _ALLOW
    denials = [m for m in governing if m.effect == "deny"]
    if denials:
        allowed, effect, deciding = False, "deny", denials
    else:
        allowed, effect, deciding = True, governing[0].effect, governing
    reasons: list[Reason] = []
    seen: set[tuple] = set()
    for measure in deciding:
        for reason in active[measure.id].reasons:
            key = (reason.kind, reason.seq)
            if key not in seen:
                seen.add(key)
                reasons.append(reason)
    applied = tuple(Applied(m.id, active[m.id].until_us) for m in governing)
    return Outcome(allowed, effect, applied, tuple(reasons[:MAX_REASONS]))
