"""Fold states read off the batch kernel (scoring/batch/states.py) equal `incremental.build`,
and advance like it: the stored state of a subject a streamed ingest scored with the kernel is
the one the incremental fold would have kept."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from socialcredit.ledger.entries import EVENT, VOID
from socialcredit.scoring import incremental
from socialcredit.scoring.batch import ColumnBuilder, columnarize, score_columns, subset
from socialcredit.scoring.batch.states import compact_standings, fold_states, stored_standings, whole_states
from socialcredit.scoring.compact import compact, stored_fields
from socialcredit.scoring.fold import fold

from test_batch_engine import DAY, PACKS, SETTINGS, populations

INCREMENTAL_PACKS = sorted(name for name, policy in PACKS.items() if incremental.supports(policy))


def _events_only_until(histories, at_us):
    """What an ingest sends the kernel: events only (a batch has no voids), none after `at`."""
    return [(s, [e for e in h if e.kind == EVENT and e.occurred_us <= at_us]) for s, h in histories]


@pytest.mark.parametrize("pack", INCREMENTAL_PACKS)
def test_states_from_the_kernel_equal_the_incremental_build(pack):
    policy = PACKS[pack]

    @SETTINGS
    @given(populations(policy, subjects=5, size=60))
    def check(population):
        histories, at_us, _known_at = population
        histories = _events_only_until(histories, at_us)
        columns = columnarize(policy, histories)
        result = score_columns(policy, columns, at_us)
        states = dict(fold_states(policy, columns, result))
        for i, (subject, history) in enumerate(histories):
            if i in result.fallback:
                assert subject not in states
                continue
            expected = incremental.build(policy, history)
            assert states[subject].to_json() == expected.to_json()
            assert compact(incremental.standing_at(policy, states[subject], at_us, subject)) == \
                compact(fold(policy, history, at_us, None, subject))

    check()


@pytest.mark.parametrize("pack", INCREMENTAL_PACKS)
def test_whole_histories_with_voids_give_the_folds_standings_and_the_built_states(pack):
    """What a non-streamed ingest asks of the kernel for subjects it refolds whole: histories
    read back from the ledger, voids included, every event no later than the instant."""
    policy = PACKS[pack]

    @SETTINGS
    @given(populations(policy, subjects=5, size=60))
    def check(population):
        histories, at_us, _known_at = population
        histories = [(s, [e for e in h if e.kind == VOID or e.occurred_us <= at_us]) for s, h in histories]
        got = list(whole_states(policy, histories, at_us))
        assert [subject for subject, _standing, _state in got] == [subject for subject, _history in histories]
        for (subject, history), (_subject, standing, state) in zip(histories, got):
            assert standing == compact(fold(policy, history, at_us, None, subject))
            assert state.to_json() == incremental.build(policy, history).to_json()

    check()


@SETTINGS
@given(populations(PACKS["rongcheng"], subjects=6, size=80), st.integers(1, 30))
def test_a_state_from_the_kernel_takes_a_later_batch_as_the_fold_does(population, later_days):
    policy = PACKS["rongcheng"]
    histories, at_us, _known_at = population
    histories = _events_only_until(histories, at_us)
    columns = columnarize(policy, histories)
    states = dict(fold_states(policy, columns, score_columns(policy, columns, at_us)))
    later = at_us + later_days * DAY
    for subject, history in histories:
        event_type = next(rule.event for rule in policy.rules if not rule.match)
        new = history[-1]._replace(seq=10_000, key="later", type=event_type, occurred_us=later, attributes={}) \
            if history else None
        if new is None or not incremental.can_advance(policy, states[subject], [new], later):
            continue
        advanced = incremental.advance(policy, states[subject], [new])
        assert compact(incremental.standing_at(policy, advanced, later, subject)) == \
            compact(fold(policy, history + [new], later, None, subject))


def test_a_subset_is_sorted_by_subject_and_keeps_each_subjects_order():
    policy = PACKS["rongcheng"]
    builder = ColumnBuilder(policy)
    event_type = policy.rules[0].event
    for seq, pseudonym in enumerate(["b", "a", "b", "c", "a", "b"], start=1):
        builder.add_event(builder.subject_code(pseudonym), seq, event_type, 1_000 * seq, {})
    columns = builder.columns()
    part = subset(columns, np.flatnonzero(columns["subject"] != builder.subject_code("a")))
    assert part["subjects"] == ["b", "c"]
    assert part["subject"].tolist() == [0, 0, 0, 1]
    assert part["seq"].tolist() == [1, 3, 6, 4]
    assert part["occurred_us"].tolist() == [1_000, 3_000, 6_000, 4_000]


@pytest.mark.parametrize("pack", INCREMENTAL_PACKS)
def test_the_kernel_evaluates_advanced_states_as_the_fold(pack):
    policy = PACKS[pack]

    @SETTINGS
    @given(populations(policy, subjects=5, size=60), st.floats(0, 1))
    def check(population, share):
        histories, at_us, _known_at = population
        histories = _events_only_until(histories, at_us)
        states, expected = [], []
        for subject, history in histories:
            ordered = sorted(history, key=lambda e: (e.occurred_us, e.seq))
            cut = int(len(ordered) * share)
            state = incremental.build(policy, ordered[:cut])
            if incremental.can_advance(policy, state, ordered[cut:], at_us):
                incremental.advance(policy, state, ordered[cut:])
            else:
                state = incremental.build(policy, history)
            states.append((subject, state))
            expected.append((subject, compact(fold(policy, history, at_us, None, subject))))
        got = list(compact_standings(policy, states, at_us))
        assert got == expected
        assert [s.to_json() for _, s in got] == [s.to_json() for _, s in expected]
        assert list(stored_standings(policy, states, at_us)) == [(s, stored_fields(c)) for s, c in expected]

    check()
