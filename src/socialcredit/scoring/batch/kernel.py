"""The batch kernel: every subject's compact standing from the ledger's entries as columns.

See the package docstring (scoring/batch/__init__.py) for the input contract. The kernel does
what fold.fold does, in the same order of floating-point operations, over whole columns:

    known_at, voids     rows with seq >= known_at are dropped; an event a void of the same
                        subject targets is dropped (fold: `voided`)
    events              in (occurred, seq) order per subject (sorted only if they are not)
    contributions       one per (event, rule whose type and match it has), occurred <= at, in
                        the fold's order (event, then the policy's rule order)
    caps per period     the first `count` per (subject, rule, calendar period in the policy's
                        zone) count, the rest are `capped` (periods are contiguous runs, since
                        period_start is monotone in time)
    lifetimes           until = lifetime.after(occurred) (calendar.after), counts iff at < until
    half-lives          points * 0.5 ** ((at - occurred) / half_life), in Python for those rows
                        (NumPy's pow may differ from C's in the last bit)
    sums                np.bincount over (subject, dimension) in fold order: bincount adds in
                        input order, exactly as `sums[d] += points` does
    score               combine() elementwise, the same expression tree; round_half_up; tiers
    effects, reasons    _count_effects elementwise; reasons ranked with one lexsort by the
                        fold's key plus the fold's order (Python's sort is stable)
    measures            tier, score and dimension conditions elementwise; when a measure lifts
                        by itself (_lifts_at) from suffix sums over the future expiry instants
    validity interval   the max of change points <= at and the min of those > at

What it does not vectorize goes to the fold, per subject, counted in the result
(`fallback_subjects`, `fallback_reasons`): subjects with events that touch a list (enter,
leave, extend, or a rule counting until a listing ends), a rating dimension's events (ratings,
disputes, replies) and a `latest` dimension's event.
"""

from __future__ import annotations

import bisect
import sys
from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ...ledger.entries import EVENT, VOID, Entry
from ...policy.compiled import Policy
from ..compact import (TOP_RULE_REASONS, CompactStanding, MeasureState, body_json, compact, fields_of, stored_fields,
                       stored_form, top_reasons)
from ..fold import Reason, fold
from . import calendar

NONE = np.iinfo(np.int64).min  # an absent instant (None) in an int64 column
_LOOKAHEAD = 64  # fold._LOOKAHEAD
_PARALLEL_ROWS = 200_000  # fewer rows than this are scored in one piece
_CHUNK_ROWS = 1_000_000  # rows per piece of a large batch
_NEUMAIER = sys.version_info >= (3, 12)  # sum() of floats is compensated from Python 3.12 on


@dataclass
class BatchResult:
    """Every subject's standing as columns (vectorized subjects) or as folded objects (the rest).

    Per subject i (0 <= i < n): score[i], tier[i] (index into policy.tiers, -1 for none),
    dimensions[i, d] (rounded), valid_from[i] / valid_until[i] (NONE for None), cacheable[i].
    Per measure m (policy order): measure_active[m][i], measure_until[m][i] (NONE for None),
    and its reasons as rows reason_* between measure_offsets[m][i] and measure_offsets[m][i+1].
    The standing's reasons: rows reason_* between reason_offsets[i] and reason_offsets[i+1].
    A reason row: rule index (policy.rules), seq, points, occurred, until (NONE), effect (raw:
    CompactStanding rounds it to 6 places with Python's round), subject, capped; the rows are
    every contribution, grouped by subject, each subject's in the fold's order (what an
    incremental fold state records: batch/states.py).
    Subjects in `fallback` (index -> CompactStanding) were folded one by one; their columns
    hold nothing meaningful. `fallback_reasons` counts why.
    """

    policy: Policy
    subjects: list
    score: np.ndarray
    tier: np.ndarray
    dimensions: np.ndarray
    valid_from: np.ndarray
    valid_until: np.ndarray
    cacheable: np.ndarray
    measure_active: list
    measure_until: list
    measure_offsets: list
    measure_rows: list
    reason_offsets: np.ndarray
    reason_rows: np.ndarray
    contrib_rule: np.ndarray
    contrib_seq: np.ndarray
    contrib_points: np.ndarray
    contrib_occurred: np.ndarray
    contrib_until: np.ndarray
    contrib_effect: np.ndarray
    contrib_subject: np.ndarray  # the subject of each contribution (they come grouped by subject, in fold order)
    contrib_capped: np.ndarray  # bool: refused by its rule's cap (until NONE)
    fallback: dict = field(default_factory=dict)
    fallback_reasons: Counter = field(default_factory=Counter)

    @property
    def fallback_subjects(self) -> int:
        return len(self.fallback)

    def __len__(self) -> int:
        return len(self.subjects)

    def _reason(self, row: int) -> Reason:
        rule = self.policy.rules[self.contrib_rule[row]]
        until = int(self.contrib_until[row])
        until = None if until == NONE else until
        seq, points, occurred = int(self.contrib_seq[row]), float(self.contrib_points[row]), int(self.contrib_occurred[row])
        if rule.score_cap is not None and not rule.points:
            return Reason("cap", rule.id, seq, points, occurred, until)
        return Reason("rule", rule.id, seq, points, occurred, until, effect=round(float(self.contrib_effect[row]), 6))

    def compact(self, i: int) -> CompactStanding:
        """Subject i's CompactStanding, equal to compact(fold(...))."""
        folded = self.fallback.get(i)
        if folded is not None:
            return folded
        policy = self.policy
        decimals = policy.scale.decimals
        rows = self.reason_rows
        reasons = tuple(self._reason(r) for r in rows[self.reason_offsets[i]:self.reason_offsets[i + 1]].tolist())
        measures = {}
        cache: dict[tuple, tuple[Reason, ...]] = {}
        for m, measure in enumerate(policy.measures):
            if not self.measure_active[m][i]:
                continue
            offsets = self.measure_offsets[m]
            key = (measure.kind, measure.list_id, measure.tiers, measure.threshold, measure.dimension)
            if key not in cache:
                cache[key] = tuple(self._reason(r) for r in self.measure_rows[m][offsets[i]:offsets[i + 1]].tolist())
            until = int(self.measure_until[m][i])
            measures[measure.id] = MeasureState(None if until == NONE else until, cache[key])
        tier = int(self.tier[i])
        vf, vu = int(self.valid_from[i]), int(self.valid_until[i])
        return CompactStanding(
            score=_python_number(self.score[i], decimals),
            tier=None if tier < 0 else policy.tiers[tier].id,
            dimensions=tuple(_python_number(v, decimals) for v in self.dimensions[i].tolist()),
            lists=(),
            measures=measures,
            reasons=top_reasons(reasons),
            policy_digest=policy.digest,
            valid_from_us=None if vf == NONE else vf,
            valid_until_us=None if vu == NONE else vu,
            cacheable=bool(self.cacheable[i]),
        )

    def _reasons(self, rows: np.ndarray, encoded: bool) -> list:
        """The Reasons of contribution rows, in bulk (what `_reason` makes one by one), or with
        `encoded` the lists a stored standing holds for them: `compact.encode_reason`'s format,
        written here without the Reasons (tests hold `stored_rows` equal to the objects')."""
        rules = self.policy.rules
        ids = [rule.id for rule in rules]
        caps = [rule.score_cap is not None and not rule.points for rule in rules]
        columns = (self.contrib_rule[rows].tolist(), self.contrib_seq[rows].tolist(),
                   self.contrib_points[rows].tolist(), self.contrib_occurred[rows].tolist(),
                   self.contrib_until[rows].tolist(), self.contrib_effect[rows].tolist())
        if encoded:
            return [["cap", ids[r], s, p, o, None if u == NONE else u, None] if caps[r] else
                    ["rule", ids[r], s, p, o, None if u == NONE else u, None, round(e, 6)]
                    for r, s, p, o, u, e in zip(*columns)]
        return [Reason("cap", ids[r], s, p, o, None if u == NONE else u) if caps[r] else
                Reason("rule", ids[r], s, p, o, None if u == NONE else u, None, 0.0, round(e, 6))
                for r, s, p, o, u, e in zip(*columns)]

    def standings(self):
        """(subject, CompactStanding) for every subject, in order: `compact(i)` for each, with
        the columns turned into Python values in bulk."""
        digest = self.policy.digest
        for subject, parts in self._parts(encoded=False):
            if parts.__class__ is CompactStanding:
                yield subject, parts
                continue
            score, tier, dimensions, measures, reasons, valid_from, valid_until, cacheable = parts
            yield subject, CompactStanding(
                score=score, tier=tier, dimensions=dimensions, lists=(),
                measures={mid: MeasureState(until, found) for mid, until, found in measures},
                reasons=reasons, policy_digest=digest, valid_from_us=valid_from, valid_until_us=valid_until,
                cacheable=cacheable)

    def stored_rows(self):
        """(subject, `compact.stored_fields` of its standing) for every subject, in order: each
        of `standings()` as the registry stores it, made from the columns without the objects
        (a materialization writes a row for every subject)."""
        digest = self.policy.digest
        for subject, parts in self._parts(encoded=True):
            if parts.__class__ is CompactStanding:
                yield subject, stored_fields(parts)
                continue
            score, tier, dimensions, measures, reasons, valid_from, valid_until, cacheable = parts
            body = body_json(stored_form(score, tier, dimensions, [], measures, reasons, digest, valid_from, valid_until))
            yield subject, fields_of(valid_from, valid_until, cacheable, score, tier, body)

    def _parts(self, encoded: bool):
        """(subject, parts) for every subject, in order: a folded subject's CompactStanding, or
        (score, tier, dimensions, measures as (id, until, reasons), reasons, valid_from,
        valid_until, cacheable) with the reasons as `_reasons(encoded)` makes them."""
        policy = self.policy
        decimals = policy.scale.decimals
        number = int if decimals == 0 else float
        # Reasons only for the rows a stored standing keeps: each subject's first
        # TOP_RULE_REASONS ranked rows (every kernel reason is a rule's or a cap's: a subject on
        # a list or with ratings is folded) and the rows its measures name.
        ranked, offsets = self.reason_rows, self.reason_offsets
        kept = ranked[_rank_in_runs(self.contrib_subject[ranked]) < TOP_RULE_REASONS]
        needed = np.unique(np.concatenate([kept, *self.measure_rows]))
        reasons = self._reasons(needed, encoded)
        position = np.empty(self.contrib_rule.size, dtype=np.int64)
        position[needed] = np.arange(needed.size)
        top = [reasons[p] for p in position[kept].tolist()]
        offsets = np.concatenate(([0], np.cumsum(np.minimum(np.diff(offsets), TOP_RULE_REASONS)))).tolist()
        scores, tiers = self.score.tolist(), self.tier.tolist()
        dimensions = self.dimensions.tolist()
        valid_from, valid_until, cacheable = self.valid_from.tolist(), self.valid_until.tolist(), self.cacheable.tolist()
        tier_ids = [tier.id for tier in policy.tiers]
        measures = []
        for m, measure in enumerate(policy.measures):
            active = self.measure_active[m]
            if not active.any():
                continue
            key = (measure.kind, measure.list_id, measure.tiers, measure.threshold, measure.dimension)
            measures.append((measure.id, key, active.tolist(), self.measure_until[m].tolist(),
                             self.measure_offsets[m].tolist(), position[self.measure_rows[m]].tolist()))
        for i, subject in enumerate(self.subjects):
            folded = self.fallback.get(i)
            if folded is not None:
                yield subject, folded
                continue
            in_force, shared = [], {}
            for mid, key, active, until, moffsets, mrows in measures:
                if active[i]:
                    found = shared.get(key)
                    if found is None:
                        found = shared[key] = tuple(reasons[r] for r in mrows[moffsets[i]:moffsets[i + 1]])
                    end = until[i]
                    in_force.append((mid, None if end == NONE else end, found))
            tier, vf, vu = tiers[i], valid_from[i], valid_until[i]
            yield subject, (number(scores[i]), None if tier < 0 else tier_ids[tier],
                            tuple(number(v) for v in dimensions[i]), in_force, tuple(top[offsets[i]:offsets[i + 1]]),
                            None if vf == NONE else vf, None if vu == NONE else vu, cacheable[i])


def _python_number(value, decimals: int):
    """round_half_up's type: an int for 0 decimals, else a float."""
    return int(value) if decimals == 0 else float(value)


# -- helpers ------------------------------------------------------------------------------------


def _round_half_up(values: np.ndarray, decimals: int) -> np.ndarray:
    """fold.round_half_up: math.floor(v * 10**d + 0.5) / 10**d, elementwise (exact in float64)."""
    factor = float(10**decimals)
    return np.floor(values * factor + 0.5) / factor


def _py_sum(terms: list[np.ndarray], like: np.ndarray) -> np.ndarray:
    """What Python's sum() of these floats gives, elementwise: sequential before 3.12, Neumaier's
    compensated sum (as CPython's builtin does it) from 3.12 on."""
    total = np.zeros_like(like, dtype=np.float64)
    if not _NEUMAIER:
        for term in terms:
            total = total + term
        return total
    compensation = np.zeros_like(total)
    for term in terms:
        t = total + term
        compensation = compensation + np.where(np.abs(total) >= np.abs(term), (total - t) + term, (term - t) + total)
        total = t
    finite = np.isfinite(compensation) & (compensation != 0)
    return np.where(finite, total + compensation, total)


def _segment_first(groups: np.ndarray) -> np.ndarray:
    """Boolean: the row starts a new run of equal `groups` values."""
    first = np.ones(groups.size, dtype=bool)
    if groups.size:
        first[1:] = groups[1:] != groups[:-1]
    return first


def _rank_in_runs(groups: np.ndarray) -> np.ndarray:
    """0, 1, 2, ... within each run of equal consecutive values."""
    n = groups.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(_segment_first(groups))
    run_start = np.repeat(starts, np.diff(np.append(starts, n)))
    return np.arange(n) - run_start


_KEY_ROOM = 1 << 62  # what a combined sort key may reach: int64, with room to spare


def _order_in_groups(groups: np.ndarray, keys: np.ndarray, room: int = _KEY_ROOM) -> np.ndarray:
    """np.lexsort((keys, groups)) for `groups` already in order (nondecreasing): a stable sort of
    one combined key, group * span + key, slice by slice where the key would not fit 64 bits.

    A quarter of lexsort's time: one pass instead of two, and the stable sort takes the runs
    already in order (an end of a record is its occurrence plus one of a few lifetimes)."""
    if groups.size < 2:
        return np.arange(groups.size)
    low = int(keys.min())
    span = int(keys.max()) - low + 1
    if span > room:
        return np.lexsort((keys, groups))
    per_slice = room // span  # groups a slice can hold
    first, last = int(groups[0]), int(groups[-1])
    shifted = keys - low
    if last - first < per_slice:
        return np.argsort((groups - first) * span + shifted, kind="stable")
    cuts = np.searchsorted(groups, np.arange(first + per_slice, last + 1, per_slice), side="left").tolist()
    parts, start = [], 0
    for stop in cuts + [groups.size]:
        if stop > start:
            part = groups[start:stop]
            parts.append(start + np.argsort((part - part[0]) * span + shifted[start:stop], kind="stable"))
        start = stop
    return np.concatenate(parts)


def _offsets(subject: np.ndarray, n: int) -> np.ndarray:
    """CSR offsets of rows sorted by subject."""
    return np.searchsorted(subject, np.arange(n + 1), side="left").astype(np.int64)


class _Clock:
    """Per subject: the last change point <= at, the first > at (fold._ChangePoints)."""

    def __init__(self, n: int, at_us: int):
        self.at = at_us
        self.before = np.full(n, NONE, dtype=np.int64)
        self.after = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)

    def add(self, subject: np.ndarray, instant: np.ndarray) -> None:
        """Change points of subjects given in sorted order (reduced per run of a subject)."""
        if instant.size == 0:
            return
        starts = np.flatnonzero(_segment_first(subject))
        who = subject[starts]
        past = instant <= self.at
        latest = np.maximum.reduceat(np.where(past, instant, NONE), starts)
        self.before[who] = np.maximum(self.before[who], latest)
        soonest = np.minimum.reduceat(np.where(past, np.iinfo(np.int64).max, instant), starts)
        self.after[who] = np.minimum(self.after[who], soonest)

    def result(self):
        until = np.where(self.after == np.iinfo(np.int64).max, NONE, self.after)
        return self.before, until


# -- the kernel ---------------------------------------------------------------------------------


def fallback_types(policy: Policy) -> dict[str, str]:
    """Event types whose presence sends a subject to the fold, and why."""
    why: dict[str, str] = {}
    for event_type in policy.list_triggers_by_event:
        why.setdefault(event_type, "list spells")
    for rule in policy.rules:
        if rule.until_list is not None:
            why.setdefault(rule.event, "list spells")
    if policy.rating_dimensions and policy.ratings is not None:
        for event_type in (policy.ratings.event, "peer.review_disputed", "peer.review_reply"):
            why.setdefault(event_type, "ratings")
    for _index, event_type, _attribute, _lifetime in policy.latest_dimensions:
        why.setdefault(event_type, "latest-value dimension")
    return why


def score_columns(policy: Policy, columns: dict, at_us: int, known_at: int | None = None,
                  workers: int = 1) -> "BatchResult | PiecedResult":
    """Every subject's standing at `at_us` as known at `known_at` (see the package docstring).

    A large batch is cut into runs of subjects of about equal rows (at least `workers` of them),
    scored in `workers` threads (NumPy lets go of the GIL in its loops) and the results put end
    to end: subjects are independent, so the answer is the same as in one piece."""
    subject = np.asarray(columns["subject"], dtype=np.int64)
    n = len(columns["subjects"])
    pieces = max(workers, -(-subject.size // _CHUNK_ROWS))
    if subject.size < _PARALLEL_ROWS or pieces <= 1 or n < 2 * pieces:
        return _score_chunk(policy, columns, at_us, known_at)
    # Pieces of about _CHUNK_ROWS rows: their temporaries stay small enough for malloc to reuse
    # (an array over 32 MB is mapped afresh each time, and page faults then cost more than the work).
    offsets = _offsets(subject, n)
    cuts = np.searchsorted(offsets, np.linspace(0, subject.size, pieces + 1)[1:-1])
    bounds = [0, *sorted(set(int(c) for c in cuts if 0 < c < n)), n]
    chunks = [_chunk(columns, subject, offsets, a, b) for a, b in zip(bounds, bounds[1:])]
    if workers <= 1:
        parts = [_score_chunk(policy, chunk, at_us, known_at) for chunk in chunks]
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(lambda chunk: _score_chunk(policy, chunk, at_us, known_at), chunks))
    return PiecedResult(policy, parts, bounds[:-1])


def _chunk(columns: dict, subject: np.ndarray, offsets: np.ndarray, first: int, stop: int) -> dict:
    """The columns of subjects [first, stop): views of the rows, subject codes from 0."""
    lo, hi = int(offsets[first]), int(offsets[stop])
    part = {"subjects": list(columns["subjects"][first:stop]), "subject": subject[lo:hi] - first,
            "type_names": columns["type_names"],
            "attributes": {name: (np.asarray(codes)[lo:hi], values)
                           for name, (codes, values) in columns.get("attributes", {}).items()}}
    for name in ("seq", "kind", "target", "type", "occurred_us"):
        part[name] = np.asarray(columns[name])[lo:hi]
    for name in ("entry", "attributes_json", "derived_json"):
        if columns.get(name) is not None:
            part[name] = columns[name][lo:hi]
    return part


class PiecedResult:
    """The results of consecutive runs of subjects, read as one (what a large batch returns).

    Per-subject columns (score, tier, dimensions, valid_from, valid_until, cacheable) are put
    end to end; the per-contribution columns stay in the pieces (`pieces`, each a BatchResult
    whose subjects start at `starts[k]`), since copying 10M rows again would cost more than
    computing them."""

    def __init__(self, policy: Policy, pieces: list[BatchResult], starts: list[int]):
        self.policy = policy
        self.pieces = pieces
        self.starts = starts
        self.subjects = [subject for piece in pieces for subject in piece.subjects]
        for name in ("score", "tier", "valid_from", "valid_until", "cacheable"):
            setattr(self, name, np.concatenate([getattr(piece, name) for piece in pieces]))
        self.dimensions = np.vstack([piece.dimensions for piece in pieces])
        self.fallback = {start + i: standing for piece, start in zip(pieces, starts)
                         for i, standing in piece.fallback.items()}
        self.fallback_reasons = sum((piece.fallback_reasons for piece in pieces), Counter())

    @property
    def fallback_subjects(self) -> int:
        return len(self.fallback)

    def __len__(self) -> int:
        return len(self.subjects)

    def compact(self, i: int) -> CompactStanding:
        k = bisect.bisect_right(self.starts, i) - 1
        return self.pieces[k].compact(i - self.starts[k])

    def standings(self):
        for piece in self.pieces:
            yield from piece.standings()

    def stored_rows(self):
        for piece in self.pieces:
            yield from piece.stored_rows()


def _score_chunk(policy: Policy, columns: dict, at_us: int, known_at: int | None = None) -> BatchResult:
    subjects = list(columns["subjects"])
    n = len(subjects)
    subject = np.asarray(columns["subject"], dtype=np.int64)
    seq = np.asarray(columns["seq"], dtype=np.int64)
    kind = np.asarray(columns["kind"], dtype=np.int8)
    target = np.asarray(columns["target"], dtype=np.int64)
    type_code = np.asarray(columns["type"], dtype=np.int64)
    type_names = list(columns["type_names"])
    occurred = np.asarray(columns["occurred_us"], dtype=np.int64)
    attributes = columns.get("attributes", {})
    rows = np.arange(subject.size)

    # known_at, then voids: (subject, target) of each void against (subject, seq) of each event
    is_event = kind == 0
    if known_at is not None:
        is_event &= seq < known_at
    void = ~is_event if known_at is None else (kind == 1) & (seq < known_at)
    if void.any():
        width = int(max(seq.max(initial=0), target.max(initial=0))) + 1
        voided = np.isin(subject * width + seq, (subject * width + target)[void])
        is_event &= ~voided

    # subjects the kernel leaves to the fold
    folded_types = fallback_types(policy)
    fallback_why: dict[int, str] = {}
    if folded_types:
        type_why = [folded_types.get(name) for name in type_names]
        flagged = np.array([w is not None for w in type_why] + [False], dtype=bool)
        hit = is_event & flagged[type_code]
        for s, code in zip(subject[hit].tolist(), type_code[hit].tolist()):
            fallback_why.setdefault(s, type_why[code])

    # (NumPy arrays are taken whole where every row is an event: copies of 10M rows cost)
    if is_event.all():
        ev = rows
        ev_subject, ev_occurred, ev_seq, ev_type = subject, occurred, seq, type_code
    else:
        ev = rows[is_event]
        ev_subject, ev_occurred, ev_seq, ev_type = subject[ev], occurred[ev], seq[ev], type_code[ev]
    # fold order: (occurred, seq) within a subject; rows come in seq order, and a ledger written
    # in time order is in occurred order already
    if ev.size > 1 and np.any((ev_occurred[1:] < ev_occurred[:-1]) & (ev_subject[1:] == ev_subject[:-1])):
        order = np.lexsort((ev_seq, ev_occurred, ev_subject))
        ev, ev_subject, ev_occurred, ev_seq, ev_type = ev[order], ev_subject[order], ev_occurred[order], ev_seq[order], ev_type[order]

    clock = _Clock(n, at_us)
    clock.add(ev_subject, ev_occurred)

    # contributions: (event position, rule index) in the fold's order: an event's rules in policy
    # order (rules_by_event), taken slot by slot (the k-th rule of each event's type), then laid
    # out event by event (np.repeat), so no sort is needed
    happened = None if ev_occurred.size == 0 or ev_occurred.max() <= at_us else ev_occurred <= at_us
    rule_index = {rule.id: r for r, rule in enumerate(policy.rules)}
    by_type = [[rule_index[rule.id] for rule in policy.rules_by_event.get(name, ())] for name in type_names]
    slots = max((len(found) for found in by_type), default=0)
    chosen_by_slot, candidate_by_slot = [], []
    for k in range(slots):
        table = np.array([found[k] if len(found) > k else -1 for found in by_type], dtype=np.int64)
        candidate = table[ev_type]
        chosen = candidate >= 0
        if happened is not None:
            chosen &= happened
        for r in sorted({int(v) for v in table if v >= 0}):
            for name, allowed in policy.rules[r].match:
                where = np.flatnonzero(chosen & (candidate == r))
                chosen[where[~_matching(attributes.get(name), allowed, ev[where])]] = False
        chosen_by_slot.append(chosen)
        candidate_by_slot.append(candidate)
    c_event = None  # None: one contribution per event, in event order (the identity)
    if slots == 0:
        c_event = np.zeros(0, dtype=np.int64)
        c_rule = np.zeros(0, dtype=np.int64)
    elif slots == 1:
        if chosen_by_slot[0].all():
            c_rule = candidate_by_slot[0]
        else:
            c_event = np.flatnonzero(chosen_by_slot[0])
            c_rule = candidate_by_slot[0][c_event]
    else:
        count = np.zeros(ev_type.size, dtype=np.int64)
        for chosen in chosen_by_slot:
            count += chosen
        if np.all(count == 1):  # exactly one rule each (Rongcheng's severities): no layout needed
            c_rule = np.full(ev_type.size, -1, dtype=np.int64)
            for chosen, candidate in zip(chosen_by_slot, candidate_by_slot):
                np.copyto(c_rule, candidate, where=chosen)
        else:
            first = np.cumsum(count) - count
            c_rule = np.empty(int(count.sum()), dtype=np.int64)
            placed = np.zeros(ev_type.size, dtype=np.int64)
            for chosen, candidate in zip(chosen_by_slot, candidate_by_slot):
                where = np.flatnonzero(chosen)
                c_rule[first[where] + placed[where]] = candidate[where]
                placed[where] += 1
            c_event = np.repeat(np.arange(ev_type.size), count)
    del chosen_by_slot, candidate_by_slot
    if c_event is None:
        c_subject, c_occurred, c_seq = ev_subject, ev_occurred, ev_seq
    else:
        c_subject, c_occurred, c_seq = ev_subject[c_event], ev_occurred[c_event], ev_seq[c_event]
    rules = policy.rules

    # caps per calendar period: runs of (subject, period) within a rule, in time order
    capped = np.zeros(c_rule.size, dtype=bool)
    for r, rule in enumerate(rules):
        if rule.cap_count is None:
            continue
        mine = np.flatnonzero(c_rule == r)
        if mine.size == 0:
            continue
        period = calendar.period_starts(c_occurred[mine], rule.cap_period, policy.zone)
        subj = c_subject[mine]
        # grouped by (subject, period), in fold order inside a group (a clock change at local
        # midnight can send a later instant back to an earlier local day, so sort, not runs)
        order = _order_in_groups(subj, period)  # mine is increasing, so subj is in order
        first = _segment_first(subj[order]) | _segment_first(period[order])
        starts = np.flatnonzero(first)
        rank = np.arange(mine.size) - np.repeat(starts, np.diff(np.append(starts, mine.size)))
        capped[mine[order[rank >= rule.cap_count]]] = True

    # lifetimes, one pass per distinct duration
    until = np.full(c_rule.size, NONE, dtype=np.int64)
    lifetimes = list(dict.fromkeys(rule.lifetime for rule in rules if rule.lifetime is not None))
    if lifetimes:
        which = np.array([-1 if rule.lifetime is None else lifetimes.index(rule.lifetime) for rule in rules] + [-1],
                         dtype=np.int64)[c_rule]
        which[capped] = -1
        for j, lifetime in enumerate(lifetimes):
            mine = np.flatnonzero(which == j) if len(lifetimes) > 1 else np.flatnonzero(which >= 0)
            until[mine] = calendar.after(lifetime, c_occurred[mine])
    # (a rule counting until a listing ends: its subjects are with the fold; `until` stays unused)
    result = _evaluate(policy, subjects, clock, c_subject, c_occurred, c_seq, c_rule, capped, until, at_us)
    if fallback_why:
        _fold_the_rest(result, policy, columns, fallback_why, subject, at_us, known_at)
    return result


def score_records(policy: Policy, subjects: list, records: dict, horizons: np.ndarray, at_us: int) -> BatchResult:
    """Every subject's standing at `at_us` from its fold-state records (scoring/incremental.py)
    rather than from its events: what the kernel computes after caps and lifetimes.

    `records` holds the columns subject (index into `subjects`, grouped by subject, each
    subject's records in the fold's order), rule (index into policy.rules), seq, occurred,
    until (NONE for none) and capped (bool); `horizons` each subject's latest event (NONE:
    none), no later than `at_us`. No record may count until a listing ends and no subject be on
    a list (a state with list stays is evaluated by `incremental.standing_at`)."""
    n = len(subjects)
    clock = _Clock(n, at_us)
    has = horizons != NONE
    clock.add(np.flatnonzero(has), horizons[has])
    return _evaluate(policy, list(subjects), clock, records["subject"], records["occurred"], records["seq"],
                     records["rule"], records["capped"], records["until"], at_us)


def _evaluate(policy: Policy, subjects: list, clock: "_Clock", c_subject, c_occurred, c_seq, c_rule, capped, until,
              at_us: int) -> BatchResult:
    """The standings from the records (contributions in fold order, whether a cap refused each,
    until when each counts): points, sums, score, tiers, effects, reasons, measures, validity."""
    n = len(subjects)
    rules = policy.rules
    rule_points = np.array([r.points for r in rules] + [0.0], dtype=np.float64)
    rule_dim = np.array([r.dimension for r in rules] + [-1], dtype=np.int64)
    rule_cap = np.array([np.inf if r.score_cap is None else r.score_cap for r in rules] + [np.inf], dtype=np.float64)
    rule_has_cap = np.array([r.score_cap is not None for r in rules] + [False], dtype=bool)
    live = ~capped
    clock.add(c_subject, until)  # a capped record's until is NONE: no change point
    counts = live & (at_us < until)
    points = np.where(counts, rule_points[c_rule], 0.0)
    decaying_rows = np.zeros(c_rule.size, dtype=bool)
    for r, rule in enumerate(rules):
        if rule.half_life_us:
            mine = np.flatnonzero((c_rule == r) & counts)
            decaying_rows[mine] = True
            base, life = rule.points, rule.half_life_us
            points[mine] = [base * 0.5 ** ((at_us - o) / life) for o in c_occurred[mine].tolist()]

    # sums per (subject, dimension), in fold order
    D = len(policy.dimensions)
    dims = rule_dim[c_rule]
    summed = counts & (dims >= 0)
    sums = np.bincount(c_subject[summed] * max(D, 1) + dims[summed], weights=points[summed],
                       minlength=n * max(D, 1)).astype(np.float64).reshape(n, max(D, 1))[:, :D]  # (empty: int64)
    cap = np.full(n, np.inf)
    capping = counts & rule_has_cap[c_rule]
    np.minimum.at(cap, c_subject[capping], rule_cap[c_rule[capping]])

    aggregates = _constant_aggregates(policy)
    values = _dimension_values(policy, sums, aggregates)
    score = _combine(policy, values, cap)
    tier = _tiers(policy, score)
    rounded_dims = _round_half_up(values, policy.scale.decimals) if D else np.zeros((n, 0))

    # effects
    effect = _effects(policy, sums, aggregates, values, c_subject, dims, points, counts)

    # standing reasons: counting contributions ranked (caps first, |effect| desc, occurred desc, seq, fold order)
    is_cap = rule_has_cap[c_rule]
    ranked = _rank(c_subject, c_occurred, c_seq, is_cap, effect, counts)
    reason_offsets = _offsets(c_subject[ranked], n)

    # measures
    measure_active, measure_until, measure_offsets, measure_rows = [], [], [], []
    integral = all(float(r.points).is_integer() for r in rules)
    lifts_cache: dict[tuple, np.ndarray] = {}
    rows_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    actives = [None if m.kind == "list" else _condition_holds(policy, m, score, tier, values) for m in policy.measures]
    lifting = np.zeros(n, dtype=bool)
    for found in actives:
        if found is not None:
            lifting |= found
    future = None
    if lifting.any():
        future = _future(policy, lifting, c_subject, c_rule, until, counts, rule_points, rule_dim, rule_cap,
                         rule_has_cap, aggregates, n, at_us, integral)
    for measure, active in zip(policy.measures, actives):
        if measure.kind == "list":  # no subject here is on any list
            measure_active.append(np.zeros(n, dtype=bool))
            measure_until.append(np.full(n, NONE, dtype=np.int64))
            measure_offsets.append(np.zeros(n + 1, dtype=np.int64))
            measure_rows.append(np.zeros(0, dtype=np.int64))
            continue
        condition = (measure.kind, measure.tiers, measure.threshold, measure.dimension, measure.unless_lists)
        if condition not in lifts_cache:
            lifts = np.full(n, NONE, dtype=np.int64)
            if active.any():
                lifts = _lifts_at(policy, measure, active, future, n)
            lifts_cache[condition] = lifts
        lifts = np.where(active, lifts_cache[condition], NONE)
        has = lifts != NONE
        clock.add(np.flatnonzero(has), lifts[has])
        because = (measure.kind, measure.list_id, measure.tiers, measure.threshold, measure.dimension)
        if because not in rows_cache:
            direction = -1 if _is_adverse(policy, measure) else 1
            keep = (points[ranked] * direction > 0) | ((direction < 0) & is_cap[ranked])
            if measure.dimension >= 0:
                keep &= dims[ranked] == measure.dimension
            chosen = ranked[keep]
            chosen = chosen[_rank_in_runs(c_subject[chosen]) < 4]
            rows_cache[because] = (_offsets(c_subject[chosen], n), chosen)
        offsets, chosen = rows_cache[because]
        measure_active.append(active)
        measure_until.append(lifts)
        measure_offsets.append(offsets)
        measure_rows.append(chosen)

    valid_from, valid_until = clock.result()
    cacheable = np.ones(n, dtype=bool)
    if any(d.half_life_us for d in policy.rating_dimensions):
        cacheable[:] = False
    cacheable[c_subject[decaying_rows]] = False

    result = BatchResult(
        policy=policy, subjects=subjects, score=score, tier=tier, dimensions=rounded_dims,
        valid_from=valid_from, valid_until=valid_until, cacheable=cacheable,
        measure_active=measure_active, measure_until=measure_until, measure_offsets=measure_offsets,
        measure_rows=measure_rows, reason_offsets=reason_offsets, reason_rows=ranked,
        contrib_rule=c_rule, contrib_seq=c_seq, contrib_points=points, contrib_occurred=c_occurred,
        contrib_until=until, contrib_effect=effect, contrib_subject=c_subject, contrib_capped=capped,
    )
    return result


def _rank(c_subject, c_occurred, c_seq, is_cap, effect, counts) -> np.ndarray:
    """The counting contributions in fold._ranked order, subject by subject: caps first, then by
    size of effect, then the most recent, then seq, then the fold's order (its sort is stable).

    Contributions are in (subject, occurred, seq, rule) order, so "occurred descending, then seq,
    then the fold's order" is one integer: (size - start of the row's (subject, occurred) run)
    * size + position."""
    rows = np.flatnonzero(counts)
    size = c_subject.size
    if size >= 3_000_000_000:  # the combined key would not fit in 64 bits
        index = np.arange(size)
        order = np.lexsort((index[rows], c_seq[rows], -c_occurred[rows], -np.abs(effect[rows]), ~is_cap[rows],
                            c_subject[rows]))
        return rows[order]
    first = _segment_first(c_subject) | _segment_first(c_occurred)
    run_start = np.maximum.accumulate(np.where(first, np.arange(size), 0))
    recent = (size - run_start[rows]) * size + rows
    order = np.lexsort((recent, -np.abs(effect[rows]), c_subject[rows] * 2 + ~is_cap[rows]))
    return rows[order]


def _matching(column, allowed: frozenset, rows: np.ndarray) -> np.ndarray:
    """Whether each of these rows' attribute is in `allowed` (fold: attributes.get(name) in allowed)."""
    if column is None:  # no event has the attribute
        return np.full(rows.size, None in allowed, dtype=bool)
    codes, values = column
    ok = np.array([v in allowed for v in values] + [None in allowed], dtype=bool)
    return ok[np.asarray(codes, dtype=np.int64)[rows]]


def _constant_aggregates(policy: Policy) -> list:
    """fold._aggregates for a subject with no rating and no latest-value event."""
    aggregates: list = [None] * len(policy.dimensions)
    for dim in policy.rating_dimensions:
        total = dim.prior_mean * dim.prior_weight
        weights = dim.prior_weight
        aggregates[dim.index] = total / weights if weights > 0 else dim.prior_mean
    return aggregates


def _dimension_values(policy: Policy, sums: np.ndarray, aggregates: list) -> np.ndarray:
    values = np.empty(sums.shape, dtype=np.float64)
    for d, (dimension, aggregate) in enumerate(zip(policy.dimensions, aggregates)):
        if policy.scale.combine == "sum":
            values[:, d] = sums[:, d] + (aggregate or 0.0)
        else:
            start = dimension.base if aggregate is None else aggregate
            values[:, d] = np.minimum(np.maximum(start + sums[:, d], dimension.min), dimension.max)
    return values


def _combine(policy: Policy, values: np.ndarray, cap: np.ndarray) -> np.ndarray:
    """fold.combine elementwise (caps: the smallest in force, or inf)."""
    scale = policy.scale
    rows = values.shape[0]
    if scale.combine == "sum":
        total = np.full(rows, scale.base, dtype=np.float64)
        for d, dimension in enumerate(policy.dimensions):
            total = total + dimension.weight * values[:, d]
    else:
        weighted = np.zeros(rows)
        weights = 0.0
        for d, dimension in enumerate(policy.dimensions):
            weighted = weighted + dimension.weight * (values[:, d] - dimension.min) / (dimension.max - dimension.min)
            weights += dimension.weight
        total = scale.min + (scale.max - scale.min) * weighted / weights
    total = np.minimum(np.maximum(total, scale.min), scale.max)
    total = np.minimum(total, cap)
    return _round_half_up(total, scale.decimals)


def _tiers(policy: Policy, score: np.ndarray) -> np.ndarray:
    """policy.tier_for: the first tier (highest min first) whose min the score reaches."""
    tier = np.full(score.shape, -1, dtype=np.int64)
    for t in range(len(policy.tiers) - 1, -1, -1):
        floor = policy.tiers[t].min
        tier = np.where(True if floor is None else score >= floor, t, tier)
    return tier


def _condition_holds(policy: Policy, measure, score: np.ndarray, tier: np.ndarray, values: np.ndarray) -> np.ndarray:
    kind = measure.kind
    if kind == "tier":
        wanted = np.array([t.id in measure.tiers for t in policy.tiers] + [None in measure.tiers], dtype=bool)
        return wanted[tier]
    if kind == "score_below":
        return score < measure.threshold
    if kind == "score_at_least":
        return score >= measure.threshold
    value = _round_half_up(values[:, measure.dimension], policy.scale.decimals)
    if kind == "dimension_below":
        return value < measure.threshold
    return value >= measure.threshold


def _is_adverse(policy: Policy, measure) -> bool:
    from ..fold import _is_adverse_condition

    return _is_adverse_condition(policy, measure)


def _effects(policy, sums, aggregates, values, c_subject, dims, points, counts) -> np.ndarray:
    """fold._count_effects, elementwise per subject, then per contribution."""
    scale = policy.scale
    n, D = values.shape
    if scale.combine == "sum":
        starts = [aggregate or 0.0 for aggregate in aggregates]
    else:
        starts = [min(max(d.base if a is None else a, d.min), d.max) for d, a in zip(policy.dimensions, aggregates)]
    from ..fold import _raw_score

    start_score = _raw_score(policy, starts)
    factors = policy.score_factors
    moved = [values[:, d] - starts[d] for d in range(D)]
    raw_change = _py_sum([factors[d] * moved[d] for d in range(D)], np.zeros(n))
    bounded = (np.minimum(np.maximum(start_score + raw_change, scale.min), scale.max)
               - min(max(start_score, scale.min), scale.max))
    with np.errstate(divide="ignore", invalid="ignore"):
        kept = np.where(raw_change != 0, bounded / np.where(raw_change != 0, raw_change, 1.0), 0.0)
        per_point = np.zeros((n, max(D, 1)))
        for d in range(D):
            s = sums[:, d]
            ratio = np.where(s != 0, moved[d] / np.where(s != 0, s, 1.0), 0.0)
            per_point[:, d] = factors[d] * ratio * kept
    has = counts & (dims >= 0)
    if D == 1:
        factor = per_point[:, 0][c_subject]
    else:
        factor = per_point.reshape(-1)[c_subject * max(D, 1) + np.maximum(dims, 0)]
    return np.where(has, points * factor, 0.0)


def _future(policy, wanted, c_subject, c_rule, until, counts, rule_points, rule_dim, rule_cap, rule_has_cap,
            aggregates, n, at_us, integral):
    """For fold._lifts_at, the `wanted` subjects' standings at their future expiry instants: the
    distinct ends of their counting records, the first 64 of each, with what is in force at each
    (rows whose until > t: suffix sums for whole-number points, exact in any order; otherwise the
    rows in force at each instant summed in the fold's order).

    Returns (candidate subject, candidate instant, values, score, tier), candidates sorted by
    subject then instant, or None when there are none."""
    idx = np.flatnonzero(counts & wanted[c_subject] & (until > at_us))
    if idx.size == 0:
        return None
    subj, ends = c_subject[idx], until[idx]
    order = _order_in_groups(subj, ends)  # idx is increasing, so subj is in order
    idx, subj, ends = idx[order], subj[order], ends[order]
    D = len(policy.dimensions)
    distinct = _segment_first(subj) | _segment_first(ends)
    cand_pos = np.flatnonzero(distinct)
    cand_subj, cand_t = subj[cand_pos], ends[cand_pos]
    keep = _rank_in_runs(cand_subj) < _LOOKAHEAD
    run_last = np.append(cand_pos[1:], idx.size) - 1  # the last row of each distinct (subject, end) run
    cand_subj, cand_t, run_last = cand_subj[keep], cand_t[keep], run_last[keep]
    rules = c_rule[idx]
    dims, pts = rule_dim[rules], rule_points[rules]
    if integral:  # whole numbers: every partial sum is exact, so suffix sums in any order will do
        subj_end = np.searchsorted(subj, cand_subj, side="right") - 1  # the last row of the candidate's subject
        sums_t = np.zeros((cand_t.size, max(D, 1)))
        for d in range(D):
            cum = np.cumsum(np.where(dims == d, pts, 0.0))
            sums_t[:, d] = cum[subj_end] - cum[run_last]
    else:  # fold order: each candidate with its subject's rows in force, in contribution order, by bincount
        mine = np.sort(idx)  # contribution order
        row_offsets = _offsets(c_subject[mine], n)
        first, count = row_offsets[cand_subj], row_offsets[cand_subj + 1] - row_offsets[cand_subj]
        pair_cand = np.repeat(np.arange(cand_t.size), count)
        pair_row = mine[np.repeat(first, count) + _rank_in_runs(pair_cand)]
        keep = (until[pair_row] > cand_t[pair_cand]) & (rule_dim[c_rule[pair_row]] >= 0)
        pair_cand, pair_row = pair_cand[keep], pair_row[keep]
        sums_t = np.bincount(pair_cand * max(D, 1) + rule_dim[c_rule[pair_row]], weights=rule_points[c_rule[pair_row]],
                             minlength=cand_t.size * max(D, 1)).astype(np.float64).reshape(cand_t.size, max(D, 1))
    cap_t = np.full(cand_t.size, np.inf)
    cap_rows = np.flatnonzero(rule_has_cap[rules])
    if cap_rows.size:  # pairs (cap record, candidate of its subject): few
        starts = np.searchsorted(cand_subj, subj[cap_rows], side="left")
        stops = np.searchsorted(cand_subj, subj[cap_rows], side="right")
        per = stops - starts
        pair_cand = np.repeat(starts, per) + _rank_in_runs(np.repeat(np.arange(cap_rows.size), per))
        pair_row = np.repeat(cap_rows, per)
        in_force = ends[pair_row] > cand_t[pair_cand]
        np.minimum.at(cap_t, pair_cand[in_force], rule_cap[rules[pair_row[in_force]]])
    values = _dimension_values(policy, sums_t[:, :D], aggregates)
    score = _combine(policy, values, cap_t)
    return cand_subj, cand_t, values, score, _tiers(policy, score)


def _lifts_at(policy, measure, active, future, n) -> np.ndarray:
    """fold._lifts_at for the active subjects: the first future instant at which the condition fails."""
    lifts = np.full(n, NONE, dtype=np.int64)
    if future is None:
        return lifts
    cand_subj, cand_t, values, score, tier = future
    fails = np.flatnonzero(~_condition_holds(policy, measure, score, tier, values) & active[cand_subj])
    if fails.size:
        first = fails[_segment_first(cand_subj[fails])]
        lifts[cand_subj[first]] = cand_t[first]
    return lifts


def _fold_the_rest(result: BatchResult, policy: Policy, columns: dict, why: dict[int, str], subject: np.ndarray,
                   at_us: int, known_at: int | None) -> None:
    """Fold the subjects the kernel left aside, one by one, from their entries."""
    entries = columns.get("entry")
    offsets = _offsets(subject, len(result.subjects))
    for s, reason in sorted(why.items()):
        start, stop = int(offsets[s]), int(offsets[s + 1])
        if entries is not None:
            history = list(entries[start:stop])
        else:
            history = [_entry_from_columns(columns, row) for row in range(start, stop)]
        result.fallback[s] = compact(fold(policy, history, at_us, known_at, result.subjects[s]))
        result.fallback_reasons[reason] += 1


def _entry_from_columns(columns: dict, row: int) -> Entry:
    """An entry rebuilt from columns for the fold: needs `attributes_json` (and `derived_json`)."""
    import json

    kind = EVENT if int(columns["kind"][row]) == 0 else VOID
    seq = int(columns["seq"][row])
    if kind == VOID:
        return Entry(seq, VOID, 0, target=int(columns["target"][row]))
    attributes = json.loads(columns["attributes_json"][row] or "{}")
    derived_column = columns.get("derived_json")
    derived = json.loads(derived_column[row]) if derived_column is not None and derived_column[row] else None
    return Entry(seq, EVENT, 0, type=columns["type_names"][int(columns["type"][row])],
                 occurred_us=int(columns["occurred_us"][row]), attributes=attributes, derived=derived)
