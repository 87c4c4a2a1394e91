"""Incremental fold states (scoring/incremental.py) and the batch kernel, both ways: states read
off the kernel's contributions (`fold_states`), and standings of many states at once evaluated
by the kernel from their records (`compact_standings`).

A streamed ingest scores the subjects it meets for the first time with the kernel; their fold
states are then read off the kernel's columns rather than folded again one by one:

    records    the kernel's contributions, each subject's in the fold's order (event by
               event in (occurred, seq) order, an event's rules in the policy's order):
               (seq, rule, occurred, until, how), how CAPPED for one its cap refused,
               LIFETIME for a rule with a lifetime, LISTING for the rest
    counted    per (rule, calendar period) the records its cap let through, keyed in the
               order `advance` first meets them
    horizon    the latest occurred_at among the subject's events that no void cancels (all
               of them, whatever rules they meet)
    spells     none: a subject with an event that touches a list goes to the fold (the
               kernel's fallback), and so must its state

Held equal to `incremental.build` of the same histories (tests/test_batch_states.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ...policy.compiled import Policy
from .. import incremental
from ..compact import CompactStanding, compact, stored_fields
from ..incremental import CAPPED, LIFETIME, LISTING, FoldState
from . import calendar
from .kernel import NONE, score_columns, score_records


def fold_states(policy: Policy, columns: dict, result) -> Iterator[tuple[str, FoldState]]:
    """(subject, its fold state) for every subject the kernel scored from `columns` (a
    BatchResult or a PiecedResult of them); subjects it folded one by one are not given.

    The kernel must have scored at an instant no earlier than any event in `columns` (it
    leaves later events out; a state folds every event): the caller sends a subject with an
    event after that instant to the fold."""
    pieces = getattr(result, "pieces", None) or [result]
    starts = getattr(result, "starts", None) or [0]
    n = len(columns["subjects"])
    horizon = np.full(n, NONE, dtype=np.int64)
    events = columns["kind"] == 0
    voids = columns["kind"] == 1
    if voids.any():  # a voided event is not folded, so it sets no horizon
        events &= ~np.isin(columns["seq"], columns["target"][voids])
    np.maximum.at(horizon, columns["subject"][events], columns["occurred_us"][events])
    horizons = horizon.tolist()
    for piece, start in zip(pieces, starts):
        yield from _piece_states(policy, piece, start, horizons)


def _piece_states(policy: Policy, piece, start: int, horizons: list[int]) -> Iterator[tuple[str, FoldState]]:
    rules = policy.rules
    rule = piece.contrib_rule
    capped = piece.contrib_capped
    # the period each record a cap let through counts in (NONE: its rule has no cap, or it was refused)
    period = np.full(rule.size, NONE, dtype=np.int64)
    for r, spec in enumerate(rules):
        if spec.cap_count is not None:
            mine = np.flatnonzero((rule == r) & ~capped)
            if mine.size:
                period[mine] = calendar.period_starts(piece.contrib_occurred[mine], spec.cap_period, policy.zone)
    ids = [spec.id for spec in rules]
    how_of = [LISTING if spec.lifetime is None else LIFETIME for spec in rules]
    offsets = np.searchsorted(piece.contrib_subject, np.arange(len(piece.subjects) + 1)).tolist()
    columns = (rule.tolist(), piece.contrib_seq.tolist(), piece.contrib_occurred.tolist(),
               piece.contrib_until.tolist(), capped.tolist(), period.tolist())
    rows = list(zip(*columns))
    digest = policy.digest
    for i, subject in enumerate(piece.subjects):
        if i in piece.fallback:
            continue
        records, counted = [], {}
        for r, seq, occurred, until, refused, starts_at in rows[offsets[i]:offsets[i + 1]]:
            if refused:
                records.append((seq, ids[r], occurred, None, CAPPED))
                continue
            if starts_at != NONE:
                key = (ids[r], starts_at)
                counted[key] = counted.get(key, 0) + 1
            how = how_of[r]
            records.append((seq, ids[r], occurred, until if how == LIFETIME else None, how))
        latest = horizons[start + i]
        yield subject, FoldState(digest, None if latest == NONE else latest, [], {}, records, counted)


def whole_states(policy: Policy, histories: list[tuple[str, list]],
                 at_us: int) -> Iterator[tuple[str, CompactStanding, FoldState]]:
    """(subject, its compact standing at `at_us`, its fold state) for whole histories, in order:
    what `compact(fold(...))` and `incremental.build` give, by the kernel for all of them at
    once (a subject the kernel folds one by one has its state built one by one too).

    No history may hold an event after `at_us` (the fold leaves it out, a state cannot): the
    caller folds such a subject itself."""
    from . import columnarize

    columns = columnarize(policy, histories)
    result = score_columns(policy, columns, at_us)
    states = dict(fold_states(policy, columns, result))
    for (subject, history), (_pseudonym, standing) in zip(histories, result.standings()):
        state = states.get(subject)
        yield subject, standing, state if state is not None else incremental.build(policy, history)


def compact_standings(policy: Policy, states: list[tuple[str, FoldState]],
                      at_us: int) -> Iterator[tuple[str, CompactStanding]]:
    """(subject, compact(incremental.standing_at(policy, state, at_us, subject))) for each, in
    order: the states without list stays evaluated together by the kernel (`score_records`),
    the others one by one. Every state's horizon must be no later than `at_us`."""
    return _evaluated(policy, states, at_us, stored=False)


def stored_standings(policy: Policy, states: list[tuple[str, FoldState]], at_us: int) -> Iterator[tuple[str, tuple]]:
    """(subject, `compact.stored_fields` of what `compact_standings` gives it): the rows a
    materialization writes, the kernel's made without the objects (`BatchResult.stored_rows`)."""
    return _evaluated(policy, states, at_us, stored=True)


def _evaluated(policy: Policy, states: list[tuple[str, FoldState]], at_us: int, stored: bool) -> Iterator:
    rule_index = {rule.id: r for r, rule in enumerate(policy.rules)}
    vectorized = [not state.spells and all(record[4] != LISTING for record in state.records)
                  for _subject, state in states]
    chosen = [pair for pair, fits in zip(states, vectorized) if fits]
    flat = [record for _pseudonym, state in chosen for record in state.records]
    seq, rule_id, occurred, until, how = zip(*flat) if flat else ((), (), (), (), ())
    records = {
        "subject": np.repeat(np.arange(len(chosen), dtype=np.int64), [len(state.records) for _p, state in chosen]),
        "rule": np.array([rule_index[r] for r in rule_id], dtype=np.int64),
        "seq": np.array(seq, dtype=np.int64),
        "occurred": np.array(occurred, dtype=np.int64),
        "until": np.array([NONE if u is None else u for u in until], dtype=np.int64),
        "capped": np.array(how, dtype=np.int64) == CAPPED,
    }
    horizons = [NONE if state.horizon is None else state.horizon for _pseudonym, state in chosen]
    result = score_records(policy, [pseudonym for pseudonym, _state in chosen], records,
                           np.array(horizons, dtype=np.int64), at_us)
    scored = result.stored_rows() if stored else result.standings()
    for (pseudonym, state), fits in zip(states, vectorized):
        if fits:
            yield next(scored)
        else:
            standing = compact(incremental.standing_at(policy, state, at_us, pseudonym))
            yield pseudonym, stored_fields(standing) if stored else standing
