"""Property: the standing materialized at ingest equals the reference fold, for random histories.

Hypothesis draws event histories from a pack's catalogue (including events that occur in the
future, late events that occurred long ago, and repeated keys), ingests them in random batches,
and after every batch compares each subject's stored standing with `compact(fold(...))` over the
subject's entries read back from the ledger, and each cached decision with the fold's.

The registry refuses events dated after its clock, so these ingests are given a clock
`FUTURE_DAYS` ahead: the standings are still materialized at the real now, which is what
makes events in their future.
"""

from __future__ import annotations

import itertools

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit.instants import format_instant, now_us
from socialcredit.scoring.decide import decide
from socialcredit.scoring.compact import compact
from socialcredit.scoring.fold import fold

DAY = 86_400_000_000
FUTURE_DAYS = 40  # the latest event a history holds, in days from now
_counter = itertools.count()


def _clock_ahead(now: int):
    """The registry's clock for ingest: late enough that every drawn event has happened."""
    return lambda: now + (FUTURE_DAYS + 1) * DAY

RONGCHENG_TYPES = [
    ("finance.bank_arrears", {}),
    ("court.breach_judgment", {"case_id": "c"}),
    ("commerce.other_dishonesty", {"severity": "serious"}),
    ("commerce.other_dishonesty", {"severity": "minor"}),
    ("utility.equipment_damage", {}),
    ("traffic.violation", {}),
    ("traffic.drunk_driving", {}),
    ("civic.heroic_act", {}),
    ("civic.volunteering", {}),
    ("civic.blood_donation", {}),
]
CHINA_TYPES = [
    ("court.judgment_unfulfilled", {"case_id": "A", "trigger": "refuses_to_pay"}),
    ("court.judgment_unfulfilled", {"case_id": "B", "trigger": "obstruction"}),
    ("court.judgment_fulfilled", {"case_id": "A"}),
    ("court.listing_extended", {"case_id": "B", "years": 2}),
    ("rail.serious_misconduct", {"misconduct": "smoking"}),
]
SERVICES = {
    "nosedive": ["venue.entry", "transport.air.standby", "housing.prime", "employment.office_access"],
    "rongcheng": ["utility.heating", "transport.bike_share", "finance.loan", "transport.air"],
    "china-judgment-defaulters": ["transport.air", "transport.rail.high_speed", "transport.rail.regular",
                                  "transport.rail", "property.purchase"],
}


def histories(types):
    one_event = st.tuples(
        st.sampled_from(types),
        st.integers(-3 * 365, FUTURE_DAYS),  # days from now: mostly past, some in the future
        st.integers(0, 5),  # key: small range so keys repeat (duplicates)
    )
    return st.lists(st.tuples(st.integers(0, 2), one_event), min_size=1, max_size=25)


def _assert_materialized_equals_fold(registry, subjects):
    policy = registry.policy
    now = now_us()
    for subject in subjects:
        stored = registry.materialized(subject)
        entries = registry.store.ledger.entries_for_subject(subject)
        at = stored.valid_from_us if stored.valid_from_us is not None else now
        assert stored == compact(fold(policy, entries, at, None, subject))
        reference = compact(fold(policy, entries, now, registry.size(), subject))
        active = reference.measures
        for service in SERVICES[policy.id]:
            decision = registry.check_subject(subject, service, now)
            allowed, effect, applied, reasons = decide(policy, active, service)
            assert (decision.allowed, decision.effect) == (allowed, effect)
            assert [m.id for m in decision.measures] == [a[0] for a in applied]
            assert [r.entry for r in decision.reasons] == [r[2] for r in reasons]


def _run(registry, history, batches):
    run = next(_counter)
    now = now_us()
    events = []
    for person, ((event_type, attributes), day, key) in history:
        events.append({
            "subject": f"run{run}-person{person}",
            "type": event_type,
            "occurred_at": format_instant(now + day * DAY - day * DAY % 1_000_000),
            "provider": "gen",
            "key": f"{run}-{person}-{key}-{event_type}",
            "attributes": attributes,
        })
    cuts = sorted({min(c, len(events)) for c in batches})
    subjects = {registry.pseudonym(f"run{run}-person{p}") for p in range(3)}
    start = 0
    for cut in [*cuts, len(events)]:
        if cut <= start:
            continue
        result = registry.ingest(events[start:cut], skip_invalid=True, clock=_clock_ahead(now))
        assert result.rejected == 0 or all("already used" in e.error for e in result.errors)
        touched = {s for s in subjects if registry.materialized(s) is not None}
        _assert_materialized_equals_fold(registry, touched)
        start = cut


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(RONGCHENG_TYPES), batches=st.lists(st.integers(1, 25), max_size=3))
def test_rongcheng_materialized_standing_equals_the_fold(make_registry, history, batches):
    registry = _shared(make_registry, "rongcheng")
    _run(registry, history, batches)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=histories(CHINA_TYPES), batches=st.lists(st.integers(1, 25), max_size=3))
def test_china_materialized_standing_equals_the_fold(make_registry, history, batches):
    registry = _shared(make_registry, "china-judgment-defaulters")
    _run(registry, history, batches)


def test_rebuild_gives_the_same_standings(make_registry):
    registry = make_registry()
    now = now_us()
    events = [
        {"subject": f"p{i % 7}", "type": t, "occurred_at": format_instant(now - (i * 13 % 700) * DAY),
         "provider": "gen", "key": str(i), "attributes": a}
        for i, (t, a) in enumerate(RONGCHENG_TYPES * 5)
    ]
    registry.ingest(events)
    subjects = [registry.pseudonym(f"p{i}") for i in range(7)]
    before = {s: registry.materialized(s) for s in subjects}
    assert registry.rebuild_standings().subjects == 7
    assert {s: registry.materialized(s) for s in subjects} == before


_registries: dict[tuple[int, str], object] = {}


def _shared(make_registry, policy):
    """One registry per test function (Hypothesis examples share it; subjects never collide)."""
    key = (id(make_registry), policy)
    if key not in _registries:
        _registries.clear()
        _registries[key] = make_registry(policy)
    return _registries[key]


def test_a_large_batch_equals_the_fold(make_registry):
    registry = make_registry()
    now = now_us()
    subjects = 2_050
    events = [
        {"subject": f"big{i}", "type": t, "occurred_at": format_instant(now - (i * 7 % 500 + 1) * DAY),
         "provider": "gen", "key": f"{i}-{j}", "attributes": a}
        for i in range(subjects)
        for j, (t, a) in enumerate(RONGCHENG_TYPES[i % 3: i % 3 + 2])
    ]
    assert registry.ingest(events).accepted == len(events)
    sample = [registry.pseudonym(f"big{i}") for i in range(0, subjects, 97)]
    _assert_materialized_equals_fold(registry, sample)


def test_a_large_append_of_known_subjects_folds_incrementally_and_equals_the_fold(make_registry):
    """More than a few hundred subjects whose states advance: the kernel evaluates them
    together (scoring/batch/states.py), those on a list one by one; all equal the fold."""
    registry = make_registry()
    now = now_us()
    subjects = 1_200

    def batch(first_day: int, tag: str):
        return [{"subject": f"app{i}", "type": t, "occurred_at": format_instant(now - (first_day - j - i % 5) * DAY),
                 "provider": "gen", "key": f"{tag}{i}-{j}", "attributes": a}
                for i in range(subjects) for j, (t, a) in enumerate(RONGCHENG_TYPES[i % 4: i % 4 + 3])]

    assert registry.ingest(batch(700, "a")).accepted == 3 * subjects
    result = registry.ingest(batch(300, "b"))
    assert (result.accepted, result.folded_incrementally, result.folded_whole) == (3 * subjects, subjects, 0)
    _assert_materialized_equals_fold(registry, [registry.pseudonym(f"app{i}") for i in range(0, subjects, 7)])


NOSEDIVE_EVENTS = st.lists(
    st.tuples(
        st.integers(0, 3),  # ratee
        st.one_of(
            st.tuples(st.just("peer.rating"), st.integers(0, 3), st.integers(1, 5), st.integers(0, 3)),  # rater, stars, interaction
            st.tuples(st.just("official.penalty"), st.just(0), st.just(0), st.integers(0, 3)),
        ),
        st.integers(-60, 2),  # day: up to 2 in the future
    ),
    min_size=1, max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history=NOSEDIVE_EVENTS, batches=st.lists(st.integers(1, 30), max_size=3))
def test_nosedive_materialized_standing_equals_the_fold(make_registry, history, batches):
    """With ratings: weights fixed at ingest, penalties doubling negatives, all folded the same."""
    registry = _shared(make_registry, "nosedive")
    run = next(_counter)
    now = now_us()
    people = [f"nd{run}-{i}" for i in range(4)]
    registry.ingest([{"subject": p, "type": "peer.opt_in", "occurred_at": format_instant(now - 400 * DAY),
                      "provider": "app", "key": f"opt-{p}"} for p in people])
    events = []
    for ratee, (event_type, rater, stars, interaction), day in history:
        occurred = format_instant(now + day * DAY - (day * DAY) % 1_000_000)
        if event_type == "peer.rating":
            attributes = {"rater": people[rater], "stars": stars, "interaction": f"i{interaction}"}
        else:
            attributes = {}
        events.append({"subject": people[ratee], "type": event_type, "occurred_at": occurred, "provider": "app",
                       "key": f"{run}-{len(events)}", "attributes": attributes})
    subjects = {registry.pseudonym(p) for p in people}
    start = 0
    for cut in [*sorted({min(c, len(events)) for c in batches}), len(events)]:
        if cut <= start:
            continue
        result = registry.ingest(events[start:cut], skip_invalid=True, clock=_clock_ahead(now))
        assert all("themself" in e.error or "already rated" in e.error for e in result.errors), result.errors
        _assert_materialized_equals_fold(registry, subjects)
        start = cut


def test_a_stored_standing_keeps_the_reasons_a_decision_names_not_every_record(make_registry):
    """Lean: 60 counting records, of which the stored standing keeps the top four (and every
    measure's reasons); the standing report and the explanation, folded afresh, list them all."""
    from socialcredit.scoring.compact import TOP_RULE_REASONS

    registry = make_registry()
    now = now_us()
    events = [{"subject": "many", "type": t, "occurred_at": format_instant(now - (i + 1) * DAY), "provider": "gen",
               "key": f"many-{i}", "attributes": {}}
              for i, t in enumerate(["civic.volunteering", "traffic.violation", "finance.bank_arrears"] * 20)]
    registry.ingest(events)
    subject = registry.pseudonym("many")
    full = fold(registry.policy, registry.store.ledger.entries_for_subject(subject), now, None, subject)
    counting = [r for r in full.reasons if r.kind in ("rule", "cap")]
    assert len(counting) > 2 * TOP_RULE_REASONS
    stored = registry.materialized(subject)
    assert stored.reasons == tuple(counting[:TOP_RULE_REASONS])
    assert stored.measures == compact(full).measures
    for state in stored.measures.values():
        assert 0 < len(state.reasons) <= 4
    report = registry.standing("many")
    assert [r.entry for r in report.reasons] == [r.seq for r in full.reasons]
    explanation = registry.explain("many")
    assert [r.entry for r in explanation.reasons] == [r.seq for r in full.reasons]
    _assert_materialized_equals_fold(registry, [subject])


IN_ORDER = {"rongcheng": RONGCHENG_TYPES, "china-judgment-defaulters": CHINA_TYPES}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_rongcheng_appends_in_time_order_fold_incrementally_and_equal_the_fold(make_registry, data):
    _appends_in_time_order(make_registry, "rongcheng", data)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_china_appends_in_time_order_fold_incrementally_and_equal_the_fold(make_registry, data):
    _appends_in_time_order(make_registry, "china-judgment-defaulters", data)


def _appends_in_time_order(make_registry, pack, data):
    """Batches whose events come after everything before (the common append): each subject's
    kept fold state takes only the new events, and what is stored is the fold's; an event out
    of time order, or a void, makes that subject fold its whole history (counted)."""
    registry = _shared(make_registry, pack)
    run = next(_counter)
    now = now_us()
    history = data.draw(st.lists(st.tuples(st.integers(0, 2), st.sampled_from(IN_ORDER[pack]), st.integers(0, 9)),
                                 min_size=2, max_size=30))
    cuts = sorted(set(data.draw(st.lists(st.integers(1, len(history)), min_size=1, max_size=4))))
    late = data.draw(st.booleans())
    events = []
    for n, (person, (event_type, attributes), step) in enumerate(history):
        day = -900 + 25 * n + step  # in time order
        if late and n == len(history) - 1:
            day = -950  # out of order: before everything
        events.append({"subject": f"inc{run}-p{person}", "type": event_type, "provider": "gen",
                       "occurred_at": format_instant(now + day * DAY - (now + day * DAY) % 1_000_000),
                       "key": f"inc{run}-{n}", "attributes": attributes})
    subjects = {registry.pseudonym(f"inc{run}-p{p}") for p in range(3)}
    start, incrementally = 0, 0
    for cut in [*cuts, len(events)]:
        if cut <= start:
            continue
        result = registry.ingest(events[start:cut])
        assert result.accepted == cut - start
        assert result.folded_incrementally + result.folded_whole == len({e["subject"] for e in events[start:cut]})
        incrementally += result.folded_incrementally
        _assert_materialized_equals_fold(registry, {s for s in subjects if registry.materialized(s) is not None})
        start = cut
    return incrementally


def test_a_void_and_a_rebuild_fold_the_subject_whole_then_it_folds_incrementally_again(make_registry):
    registry = make_registry()
    now = now_us()

    def events(start, count):
        return [{"subject": "v", "type": t, "provider": "gen", "key": f"v{start + i}", "attributes": a,
                 "occurred_at": format_instant(now - (400 - 10 * (start + i)) * DAY - now % 1_000_000)}
                for i, (t, a) in enumerate((RONGCHENG_TYPES * 3)[start : start + count])]

    first = registry.ingest(events(0, 5))
    assert (first.folded_incrementally, first.folded_whole) == (0, 1)
    second = registry.ingest(events(5, 5))
    assert (second.folded_incrementally, second.folded_whole) == (1, 0)
    subject = registry.pseudonym("v")
    _assert_materialized_equals_fold(registry, [subject])
    registry.void(first.ledger_size - 2, "wrong subject")
    _assert_materialized_equals_fold(registry, [subject])
    third = registry.ingest(events(10, 3))
    assert (third.folded_incrementally, third.folded_whole) == (1, 0)  # the void rebuilt the state
    _assert_materialized_equals_fold(registry, [subject])
    registry.rebuild_standings()
    fourth = registry.ingest(events(13, 3))
    assert (fourth.folded_incrementally, fourth.folded_whole) == (0, 1)  # rebuild threw the state away
    fifth = registry.ingest(events(16, 3))
    assert (fifth.folded_incrementally, fifth.folded_whole) == (1, 0)
    _assert_materialized_equals_fold(registry, [subject])
