"""Property: the incremental fold equals the full fold, for every pack.

Random histories (events of the pack's catalogue with drawn attributes, a few out of time
order, a few voids) are split at random points into batches, each evaluated at its own
instant (sometimes before the latest event: the fold leaves future events out). Batch by
batch, as ingest would: advance the kept state (through its stored JSON) where
`can_advance` allows, else build it again from the whole history (a fallback, counted); the
standing from the state must be the fold's, on everything the fold computes from the records.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialcredit.ledger.entries import EVENT, VOID, Entry
from socialcredit.policy.load import load_policy
from socialcredit.scoring import incremental
from socialcredit.scoring.compact import compact
from socialcredit.scoring.fold import fold

DAY = 86_400_000_000
BASE = 1_700_000_000_000_000  # November 2023
PACKS = ["rongcheng", "china-judgment-defaulters", "sesame", "nosedive", "peeple"]
POLICIES = {name: load_policy(name) for name in PACKS}


def _attributes(policy, event_type: str, rng: random.Random) -> dict:
    attributes = {}
    for name, spec in policy.event_types[event_type].attributes.items():
        if not spec.required and rng.random() < 0.3:
            continue
        if spec.values:
            attributes[name] = rng.choice(spec.values)
        elif spec.type == "integer":
            low = int(spec.min) if spec.min is not None else 0
            attributes[name] = rng.randint(low, int(spec.max) if spec.max is not None else low + 3)
        elif spec.type == "number":
            low = spec.min if spec.min is not None else 0.0
            attributes[name] = rng.uniform(low, spec.max if spec.max is not None else low + 100)
        elif spec.type == "boolean":
            attributes[name] = rng.random() < 0.5
        else:  # cases, references: a few values, so that exits and extensions meet their entries
            attributes[name] = rng.choice(["A", "B", "C"])
    return attributes


@st.composite
def scenarios(draw, policy):
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    types = sorted(policy.event_types)
    count = draw(st.integers(1, 40))
    day = 0
    entries: list[Entry] = []
    for seq in range(1, count + 1):
        events = [e for e in entries if e.kind == EVENT]
        if events and rng.random() < 0.06:
            target = rng.choice(events)
            entries.append(Entry(seq, VOID, 0, "s", target=target.seq, reason="wrong"))
            continue
        day += rng.choice([0, 0, 1, 3, 10, 30, 90])
        when = day - (rng.randint(1, 400) if rng.random() < 0.08 else 0)  # a few out of order
        event_type = rng.choice(types)
        entries.append(Entry(seq, EVENT, 0, "s", "person", event_type, BASE + when * DAY + rng.randint(0, DAY - 1),
                             "p", str(seq), _attributes(policy, event_type, rng)))
    cuts = sorted(set(draw(st.lists(st.integers(1, count), max_size=5))) | {count})
    batches, start = [], 0
    for cut in cuts:
        batches.append(entries[start:cut])
        start = cut
    ats = [BASE + (day + rng.choice([-40, 0, 1, 20, 200, 800])) * DAY + rng.randint(0, DAY) for _ in batches]
    return batches, ats


def _records(standing):
    return ([(c.seq, c.rule.id, c.status, c.until_us, c.points, c.effect) for c in standing.contributions],
            [(s.list_id, s.case, s.seq, s.since_us, s.until_us, s.left_seq, s.extended, s.refused_exits,
              s.extensions) for s in standing.spells],
            standing.valid_from_us, standing.valid_until_us, standing.measures, standing.reasons)


def _check(policy, batches, ats) -> tuple[int, int]:
    """Fold batch by batch as ingest would; (advanced, fell back)."""
    state = incremental.empty(policy) if incremental.supports(policy) else None
    history: list[Entry] = []
    advanced = fell_back = 0
    for batch, at in zip(batches, ats):
        if state is not None and incremental.can_advance(policy, state, batch, at):
            state = incremental.advance(policy, incremental.FoldState.from_json(state.to_json()), batch)
            advanced += 1
            history += batch
        else:
            fell_back += 1
            history += batch
            state = incremental.build(policy, history) if incremental.supports(policy) else None
        expected = fold(policy, history, at, None, "s")
        if state is not None and (state.horizon is None or state.horizon <= at):
            got = incremental.standing_at(policy, state, at, "s")
            assert compact(got) == compact(expected)
            assert _records(got) == _records(expected)
        elif state is not None:
            with pytest.raises(ValueError):
                incremental.standing_at(policy, state, at, "s")
    return advanced, fell_back


@pytest.mark.parametrize("pack", PACKS)
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_the_incremental_fold_equals_the_fold(pack, data):
    policy = POLICIES[pack]
    batches, ats = data.draw(scenarios(policy))
    advanced, fell_back = _check(policy, batches, ats)
    assert advanced + fell_back == len(batches)
    if not incremental.supports(policy):
        assert advanced == 0


def _event(seq, event_type, day, **attributes):
    return Entry(seq, EVENT, 0, "s", "person", event_type, BASE + day * DAY, "p", str(seq), attributes)


def test_a_void_or_an_event_after_at_falls_back_and_a_later_one_advances():
    policy = POLICIES["rongcheng"]
    state = incremental.build(policy, [_event(1, "traffic.violation", 10), _event(2, "civic.volunteering", 20)])
    assert state.horizon == BASE + 20 * DAY
    at = BASE + 100 * DAY
    assert incremental.can_advance(policy, state, [_event(3, "traffic.violation", 20)], at)  # the same instant: after
    assert not incremental.can_advance(policy, state, [Entry(3, VOID, 0, "s", target=1, reason="x")], at)
    assert not incremental.can_advance(policy, state, [_event(3, "traffic.violation", 120)], at)  # after `at`
    assert not incremental.can_advance(POLICIES["sesame"], state, [_event(3, "traffic.violation", 30)], at)
    assert not incremental.supports(POLICIES["nosedive"]) and not incremental.supports(POLICIES["peeple"])


def test_monthly_caps_carry_over_from_one_batch_to_the_next():
    """Rongcheng counts at most so many of a record a month: the counter is part of the state."""
    policy = POLICIES["rongcheng"]
    capped = next(r for r in policy.rules if r.cap_count is not None)
    history = [_event(n + 1, capped.event, 3, **{}) for n in range(capped.cap_count)]
    state = incremental.build(policy, history)
    later = [_event(len(history) + 1, capped.event, 3)]
    at = BASE + 10 * DAY
    assert incremental.can_advance(policy, state, later, at)
    got = incremental.standing_at(policy, incremental.advance(policy, state, later), at)
    expected = fold(policy, history + later, at)
    assert [c.status for c in got.contributions if c.rule is capped][-1] == "capped"
    assert compact(got) == compact(expected)


def _advanced_equals_fold(policy, history, batch, at):
    state = incremental.advance(policy, incremental.build(policy, history), batch)
    got, expected = incremental.standing_at(policy, state, at, "s"), fold(policy, history + batch, at, None, "s")
    assert compact(got) == compact(expected) and _records(got) == _records(expected)
    assert state.records == incremental.build(policy, history + batch).records
    return state


def test_an_event_before_the_horizon_goes_in_at_its_place_in_the_folds_order():
    """A provider's events come out of time order; one that meets no list and no full cap is
    folded where the fold would put it, and the state's horizon stays the latest event's."""
    policy = POLICIES["rongcheng"]
    history = [_event(1, "traffic.violation", 10), _event(2, "civic.volunteering", 20), _event(3, "traffic.violation", 40)]
    at = BASE + 100 * DAY
    batch = [_event(4, "traffic.violation", 19), _event(5, "traffic.violation", 10), _event(6, "traffic.violation", 50)]
    assert incremental.can_advance(policy, incremental.build(policy, history), batch, at)
    state = _advanced_equals_fold(policy, history, batch, at)
    assert [record[0] for record in state.records] == [1, 5, 4, 2, 3, 6]
    assert state.horizon == BASE + 50 * DAY


def test_an_early_event_a_full_cap_would_refuse_falls_back_and_one_with_room_advances():
    policy = POLICIES["rongcheng"]
    capped = next(r for r in policy.rules if r.cap_count == 2 and r.cap_period == "P1M")
    history = [_event(1, capped.event, 3), _event(2, "traffic.violation", 60)]
    at = BASE + 100 * DAY
    state = incremental.build(policy, history)
    assert incremental.can_advance(policy, state, [_event(3, capped.event, 5)], at)  # one of two: room for another
    _advanced_equals_fold(policy, history, [_event(3, capped.event, 5)], at)
    # two more early ones in that month: the fold would refuse one, maybe one already folded
    assert not incremental.can_advance(policy, state, [_event(3, capped.event, 5), _event(4, capped.event, 2)], at)


def test_an_early_event_that_touches_a_list_falls_back():
    policy = POLICIES["china-judgment-defaulters"]
    listing = next(iter(policy.list_triggers_by_event))
    history = [_event(1, listing, 10), _event(2, listing, 30)]
    state = incremental.build(policy, history)
    assert not incremental.can_advance(policy, state, [_event(3, listing, 20)], BASE + 100 * DAY)


@st.composite
def crowded_months(draw, policy):
    """Events of capped rules (and one plain type) on few days, in any order: batches whose
    early events meet caps that are full, nearly full or not."""
    capped = sorted({rule.event for rule in policy.rules if rule.cap_count is not None})
    plain = sorted(set(policy.event_types) - set(policy.list_triggers_by_event) - set(capped))[:1]
    rng = random.Random(draw(st.integers(0, 2**32 - 1)))
    count = draw(st.integers(2, 30))
    entries = [Entry(seq, EVENT, 0, "s", "person", event_type, BASE + rng.randint(0, 70) * DAY, "p", str(seq),
                     _attributes(policy, event_type, rng))
               for seq in range(1, count + 1) for event_type in [rng.choice(capped + plain)]]
    cuts = sorted(set(draw(st.lists(st.integers(1, count), max_size=4))) | {count})
    batches, start = [], 0
    for cut in cuts:
        batches.append(entries[start:cut])
        start = cut
    return batches, [BASE + 80 * DAY] * len(batches)


@pytest.mark.parametrize("pack", ["rongcheng", "sesame"])
@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_early_events_under_monthly_caps_fold_as_the_fold(pack, data):
    policy = POLICIES[pack]
    batches, ats = data.draw(crowded_months(policy))
    advanced, fell_back = _check(policy, batches, ats)
    assert advanced + fell_back == len(batches)
