"""The compact standing: what the registry materializes, caches for checks and compares.

`compact(fold(...))` keeps what a decision needs (score, tier, dimensions, lists in force,
measures in force with their reasons, the standing's few top-ranked reasons) and the interval
[valid_from, valid_until) in which it holds; instants stay integers and nothing is in words
yet (presenting.py adds the words when someone reads it). The materialized-equals-fold
property compares exactly these objects.

Stored as JSON with sorted keys and no spaces in `standings.body` (by orjson: a standing is
written for every touched subject at every append, and orjson is ten times faster than json),
in the format registries have always used: reasons as `[kind, rule or list, entry, points,
occurred, until, case]` (a rating's weight in the case slot), measures as `[id, until,
[reasons]]`.

Lean: a decision names only the reasons of the measures that decide it (at most four each,
kept whole), so the standing's own reasons are cut to the ranked few: every list stay in
force, the `TOP_RULE_REASONS` records with the biggest effect, and the ratings that pull
hardest (the fold already keeps four of each direction). A subject with 10,000 counting
records stores a few hundred bytes, not every record; the full list of what counts is
computed from the fold when someone asks (standing reports, explanations).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import orjson

from .fold import Reason, Standing


class ListSpellState(NamedTuple):
    list_id: str
    case: str
    seq: int
    since_us: int
    until_us: int | None


class MeasureState(NamedTuple):
    """A measure in force: until when (None: no known end) and why."""

    until_us: int | None
    reasons: tuple[Reason, ...]


@dataclass(slots=True)
class CompactStanding:
    score: float
    tier: str | None
    dimensions: tuple[float, ...]
    lists: tuple[ListSpellState, ...]
    measures: dict[str, MeasureState]  # in policy order
    reasons: tuple[Reason, ...]
    policy_digest: str
    valid_from_us: int | None
    valid_until_us: int | None
    cacheable: bool = True  # False when something decays: then it holds only at the instant folded

    def covers(self, at_us: int, digest: str) -> bool:
        """Whether this standing answers a question about `at_us` under the policy `digest`."""
        return (
            self.cacheable
            and self.policy_digest == digest
            and (self.valid_from_us is None or self.valid_from_us <= at_us)
            and (self.valid_until_us is None or at_us < self.valid_until_us)
        )

    def to_json(self) -> str:
        return body_json(self.stored_form())

    def stored_form(self) -> dict:
        """The value `to_json` writes (tuples in it are written as arrays)."""
        return stored_form(self.score, self.tier, list(self.dimensions), [list(s) for s in self.lists],
                           [[mid, m.until_us, [encode_reason(r) for r in m.reasons]] for mid, m in self.measures.items()],
                           [encode_reason(r) for r in self.reasons], self.policy_digest, self.valid_from_us,
                           self.valid_until_us)

    @classmethod
    def from_json(cls, text: str, cacheable: bool = True) -> "CompactStanding":
        data = orjson.loads(text)
        return cls(
            score=data["score"],
            tier=data["tier"],
            dimensions=tuple(data["dimensions"]),
            lists=tuple(ListSpellState(*s) for s in data["lists"]),
            measures={mid: MeasureState(until, tuple(_decode_reason(r) for r in reasons))
                      for mid, until, reasons in data["measures"]},
            reasons=tuple(_decode_reason(r) for r in data["reasons"]),
            policy_digest=data["policy"],
            valid_from_us=data["valid_from"],
            valid_until_us=data["valid_until"],
            cacheable=cacheable,
        )


def stored_form(score, tier, dimensions: list, lists: list, measures: list, reasons: list, policy_digest: str,
                valid_from_us: int | None, valid_until_us: int | None) -> dict:
    """A stored standing from its parts already encoded (reasons by `encode_reason`, measures
    as `[id, until, [reasons]]`): one definition for `CompactStanding.stored_form` and the
    batch kernel, which writes its rows without making the objects."""
    return {"score": score, "tier": tier, "dimensions": dimensions, "lists": lists, "measures": measures,
            "reasons": reasons, "policy": policy_digest, "valid_from": valid_from_us, "valid_until": valid_until_us}


def stored_fields(standing: CompactStanding) -> tuple:
    """(valid_from, valid_until, cacheable, score, tier, body): a standing as its stored row
    holds it, beside its subject, policy and ledger size."""
    return fields_of(standing.valid_from_us, standing.valid_until_us, standing.cacheable, standing.score,
                     standing.tier, standing.to_json())


def fields_of(valid_from_us: int | None, valid_until_us: int | None, cacheable: bool, score, tier: str | None,
              body: str) -> tuple:
    """`stored_fields` from the parts (the batch kernel has them without the object)."""
    return valid_from_us, valid_until_us, cacheable, float(score), tier, body


def body_json(value) -> str:
    """How a derived body (a standing, a fold state) is written: JSON with sorted keys and no
    spaces, by orjson. Never a hashed body: orjson writes some floats unlike json (`0.00001`)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY).decode()


TOP_RULE_REASONS = 4  # the records a standing keeps among its own reasons (FCRA's "four key factors")


def top_reasons(reasons: tuple[Reason, ...]) -> tuple[Reason, ...]:
    """The standing's reasons a stored standing keeps: lists, the top rule records, ratings.

    The fold ranks them (lists first, rules by effect, then ratings); this keeps that order.
    """
    kept, rules = [], 0
    for reason in reasons:
        if reason.kind in ("rule", "cap"):
            if rules == TOP_RULE_REASONS:
                continue
            rules += 1
        kept.append(reason)
    return tuple(kept) if len(kept) < len(reasons) else reasons


def compact(standing: Standing) -> CompactStanding:
    return CompactStanding(
        score=standing.score,
        tier=standing.tier,
        dimensions=tuple(standing.dimensions),
        lists=tuple(ListSpellState(s.list_id, s.case, s.seq, s.since_us, s.until_us) for s in standing.active_lists),
        measures={m.measure.id: MeasureState(m.until_us, tuple(m.reasons)) for m in standing.measures},
        reasons=top_reasons(standing.reasons),
        policy_digest=standing.policy.digest,
        valid_from_us=standing.valid_from_us,
        valid_until_us=standing.valid_until_us,
        cacheable=standing.cacheable,
    )


def encode_reason(reason: Reason) -> list:
    case = f"{reason.weight:g}" if reason.kind == "rating" else reason.case
    item = [reason.kind, reason.ident, reason.seq, reason.points, reason.occurred_us, reason.until_us, case]
    if reason.effect is not None:
        item.append(reason.effect)  # a rule's effect on the score (standings written before it lack it)
    return item


def _decode_reason(item: list) -> Reason:
    kind, ident, seq, points, occurred_us, until_us, case = item[:7]
    effect = item[7] if len(item) > 7 else None
    if kind == "rating":
        return Reason(kind, ident, seq, points, occurred_us, until_us, None, float(case))
    return Reason(kind, ident, seq, points, occurred_us, until_us, case, effect=effect)
