"""The columnar batch engine equals the fold: the whole CompactStanding, to the last digit.

Floats are compared with ==, no tolerance: the kernel performs the fold's floating-point
operations in the fold's order (see scoring/batch/kernel.py), so equal is what it must be.
"""

from __future__ import annotations

import sqlite3
from datetime import timezone

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from socialcredit import instants
from socialcredit.cli import app
from socialcredit.errors import InvalidInput
from socialcredit.instants import Duration, zone_named
from socialcredit.ledger.entries import EVENT, VOID, Entry
from socialcredit.policy.load import load_policy, pack_names, parse_policy
from socialcredit.scoring.batch import BatchEngine, calendar, columnarize, score_columns
from socialcredit.scoring.batch.kernel import _order_in_groups
from socialcredit.scoring.compact import compact, stored_fields
from socialcredit.scoring.engine import engine_named
from socialcredit.scoring.fold import fold

from conftest import at, sqlite_from_template

DAY = 86_400 * 1_000_000
BASE = at("2026-03-01")
PACKS = {name: load_policy(name) for name in pack_names()}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- random histories ---------------------------------------------------------------------------


def _attribute_value(spec):
    if spec.type == "reference":
        return st.sampled_from(["rater-1", "rater-2", "rater-3"])
    if spec.type == "boolean":
        return st.booleans()
    if spec.type == "string":
        return st.sampled_from(spec.values) if spec.values else st.sampled_from(["a", "b", "(2026)J1"])
    low = int(spec.min) if spec.min is not None else -3
    high = int(spec.max) if spec.max is not None else low + 6
    high = min(high, low + 6)
    if spec.type == "integer":
        return st.integers(low, high)
    return st.one_of(st.integers(low, high), st.sampled_from([low + 0.5, low + 0.25]).filter(lambda v: v <= high))


def _attributes(spec):
    required = {n: _attribute_value(a) for n, a in spec.attributes.items() if a.required}
    optional = {n: _attribute_value(a) for n, a in spec.attributes.items() if not a.required}
    return st.fixed_dictionaries(required, optional=optional)


def _one_event(policy):
    scored = sorted({rule.event for rule in policy.rules})  # types that a rule reads, drawn more often
    every = sorted(policy.event_types)
    choice = st.sampled_from(every) if not scored else st.one_of(st.sampled_from(scored), st.sampled_from(every))
    return choice.flatmap(
        lambda name: st.tuples(st.just(name), _attributes(policy.event_types[name])))


@st.composite
def populations(draw, policy, subjects=4, size=30):
    """(histories, at_us, known_at): entries of a few subjects, interleaved in the ledger as
    ingest would write them, with voids, late and future events, ratings with derived weights."""
    items = draw(st.lists(st.tuples(
        st.integers(0, subjects - 1),
        st.one_of(st.tuples(st.just("event"), _one_event(policy)), st.tuples(st.just("void"), st.integers(0, 50))),
        st.one_of(st.integers(-60, 3), st.integers(-4 * 365, 40)),  # day, from `at`: mostly recent
        st.integers(0, DAY - 1),
        st.sampled_from([1.0, 0.25, 2.0, 5.0]),  # a rating's derived weight
    ), min_size=size // 4, max_size=size))
    at_us = BASE + draw(st.integers(-400, 400)) * DAY + draw(st.integers(0, DAY - 1))
    histories: dict[int, list[Entry]] = {s: [] for s in range(subjects)}
    seq = 0
    for s, (what, payload), day, micro, weight in items:
        seq += 1
        mine = histories[s]
        if what == "void":
            events = [e for e in mine if e.kind == EVENT]
            if not events:
                continue
            mine.append(Entry(seq, VOID, BASE, f"s{s}", target=events[payload % len(events)].seq, reason="wrong"))
            continue
        event_type, raw = payload
        spec = policy.event_types[event_type]
        attributes = policy.validate_event(event_type, dict(raw), spec.subject_kinds[0])
        derived = None
        if policy.ratings is not None and event_type == policy.ratings.event:
            derived = {"weight": weight, "why": "test"}
        occurred = at_us + day * DAY + micro - DAY // 2
        mine.append(Entry(seq, EVENT, BASE, f"s{s}", spec.subject_kinds[0], event_type, occurred, "p", str(seq),
                          attributes, derived=derived))
    known_at = draw(st.one_of(st.none(), st.integers(1, seq + 1)))
    return [(f"s{s}", history) for s, history in histories.items()], at_us, known_at


def _assert_equal_to_the_fold(policy, histories, at_us, known_at=None):
    result = score_columns(policy, columnarize(policy, histories), at_us, known_at)
    assert len(result) == len(histories)
    in_bulk = list(result.standings())
    # the rows a materialization writes, made without the objects, are the objects' own
    assert list(result.stored_rows()) == [(subject, stored_fields(standing)) for subject, standing in in_bulk]
    for i, (subject, history) in enumerate(histories):
        expected = compact(fold(policy, history, at_us, known_at, subject))
        got = result.compact(i)
        assert got == expected, (subject, i in result.fallback)
        assert got.to_json() == expected.to_json()  # the stored bytes too (int vs float, -0.0)
        assert in_bulk[i] == (subject, expected) and in_bulk[i][1].to_json() == expected.to_json()
    return result


@pytest.mark.parametrize("pack", sorted(PACKS))
def test_every_pack_equals_the_fold(pack):
    policy = PACKS[pack]

    @SETTINGS
    @given(populations(policy))
    def check(population):
        histories, at_us, known_at = population
        _assert_equal_to_the_fold(policy, histories, at_us, known_at)

    check()


@SETTINGS
@given(populations(PACKS["rongcheng"], subjects=6, size=80))
def test_rongcheng_is_vectorized_whole_and_equals_the_fold(population):
    histories, at_us, known_at = population
    result = _assert_equal_to_the_fold(PACKS["rongcheng"], histories, at_us, known_at)
    assert result.fallback_subjects == 0  # the hot path: nothing folded one by one


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(populations(PACKS["sesame"], subjects=7, size=60), st.integers(2, 4))
def test_threads_cut_the_subjects_and_change_nothing(population, workers):
    from socialcredit.scoring.batch import kernel

    histories, at_us, known_at = population
    policy = PACKS["sesame"]
    columns = columnarize(policy, histories)
    whole = score_columns(policy, columns, at_us, known_at)
    saved = kernel._PARALLEL_ROWS, kernel._CHUNK_ROWS
    kernel._PARALLEL_ROWS = 0
    try:
        cut = score_columns(policy, columns, at_us, known_at, workers=workers)
        kernel._CHUNK_ROWS = 7  # more pieces than threads, in one thread too
        pieces = score_columns(policy, columns, at_us, known_at, workers=1)
    finally:
        kernel._PARALLEL_ROWS, kernel._CHUNK_ROWS = saved
    assert list(cut.standings()) == list(whole.standings()) == list(pieces.standings())
    assert list(cut.stored_rows()) == list(whole.stored_rows()) == list(pieces.stored_rows())
    assert cut.fallback_reasons == whole.fallback_reasons == pieces.fallback_reasons


def test_an_empty_batch_and_subjects_with_no_entries():
    policy = PACKS["rongcheng"]
    assert len(score_columns(policy, columnarize(policy, []), BASE)) == 0
    result = _assert_equal_to_the_fold(policy, [("a", []), ("b", [])], BASE)
    assert result.compact(0).score == 1000 and result.compact(0).tier == "A"


def test_subjects_left_to_the_fold_are_counted_with_their_reason():
    policy = PACKS["china-judgment-defaulters"]
    listing = next(t for t in policy.list_triggers_by_event)
    spec = policy.event_types[listing]
    attributes = {name: ("(2026)J1" if a.type == "string" and not a.values else (a.values or [1])[0])
                  for name, a in spec.attributes.items() if a.required}
    attributes = policy.validate_event(listing, attributes, spec.subject_kinds[0])
    listed = [Entry(1, EVENT, BASE, "x", spec.subject_kinds[0], listing, BASE - DAY, "p", "1", attributes)]
    result = _assert_equal_to_the_fold(policy, [("x", listed), ("y", [])], BASE)
    assert result.fallback_subjects == 1 and result.fallback_reasons == {"list spells": 1}
    assert 0 in result.fallback and 1 not in result.fallback


def test_the_kernel_rebuilds_entries_from_columns_when_it_is_not_given_them():
    """What a Spark worker passes: columns only, attributes as JSON for the subjects it folds."""
    import json

    policy = PACKS["china-judgment-defaulters"]
    histories = [("x", [e for e in _defaulter_history(policy)])]
    columns = columnarize(policy, histories)
    entries = columns.pop("entry")
    columns["attributes_json"] = [json.dumps(e.attributes) if e.kind == EVENT else None for e in entries]
    result = score_columns(policy, columns, BASE)
    assert result.fallback_subjects == 1
    assert result.compact(0) == compact(fold(policy, histories[0][1], BASE, None, "x"))


def _defaulter_history(policy):
    listing = next(t for t in policy.list_triggers_by_event)
    spec = policy.event_types[listing]
    attributes = {name: ("(2026)J1" if a.type == "string" and not a.values else (a.values or [1])[0])
                  for name, a in spec.attributes.items() if a.required}
    attributes = policy.validate_event(listing, attributes, spec.subject_kinds[0])
    return [Entry(1, EVENT, BASE, "x", spec.subject_kinds[0], listing, BASE - DAY, "p", "1", attributes)]


# -- random policies built from the primitives ------------------------------------------------


ZONES = ["UTC", "Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Lord_Howe"]
LIFETIMES = ["P1M", "P90D", "P1Y", "P2Y", "PT36H", "P1Y6M"]


@st.composite
def policies(draw):
    zone = draw(st.sampled_from(ZONES))
    weighted = draw(st.booleans())
    decimals = draw(st.integers(0, 2))
    ratings = draw(st.booleans())
    with_list = draw(st.booleans())
    n_dims = draw(st.integers(1, 3))
    lines = ['[policy]', 'id = "random"', 'version = "1"', 'title = "random"', f'timezone = "{zone}"', '',
             '[scale]', 'base = 100', 'min = 0', 'max = 200', f'combine = "{"weighted" if weighted else "sum"}"',
             f'decimals = {decimals}', '']
    dims = []
    for d in range(n_dims):
        dims.append(f"d{d}")
        lines += ['[[dimensions]]', f'id = "d{d}"', f'label = "D{d}"',
                  f'weight = {draw(st.sampled_from([1.0, 0.5, 2.0, 0.3]))}']
        if weighted:
            lines += [f'min = {draw(st.sampled_from([0, -50]))}', 'max = 100',
                      f'base = {draw(st.sampled_from([0, 50, 12.5]))}']
        lines.append('')
    if ratings:
        lines += ['[[dimensions]]', 'id = "stars"', 'label = "Stars"', 'aggregate = "rating_mean"', 'min = 1.0',
                  'max = 5.0', 'prior_mean = 3.0', f'prior_weight = {draw(st.sampled_from([0.0, 2.0, 5.0]))}']
        window = draw(st.sampled_from([None, 3]))
        if window:
            lines.append(f'window = {window}')
        lines += ['', '[ratings]', 'event = "peer.rating"', '',
                  '[event_types."peer.rating"]', 'domain = "peer"', 'description = "a rating"',
                  'subject_kinds = ["person"]', 'attributes.rater = { type = "reference", required = true }',
                  'attributes.stars = { type = "integer", min = 1, max = 5, required = true }',
                  'attributes.interaction = { type = "string", required = true }', '',
                  '[event_types."peer.opt_in"]', 'domain = "peer"', 'description = "in"', 'subject_kinds = ["person"]', '',
                  '[event_types."peer.opt_out"]', 'domain = "peer"', 'description = "out"', 'subject_kinds = ["person"]',
                  '']
    for name in ("a", "b", "c"):
        lines += [f'[event_types."ev.{name}"]', 'domain = "ev"', f'description = "event {name}"',
                  'attributes.level = { type = "string", values = ["low", "high"] }', '']
    if with_list:
        lines += ['[event_types."ev.list"]', 'domain = "ev"', 'description = "listed"',
                  'attributes.case = { type = "string", values = ["one", "two"], required = true }', '',
                  '[event_types."ev.unlist"]', 'domain = "ev"', 'description = "unlisted"',
                  'attributes.case = { type = "string", values = ["one", "two"], required = true }', '']
    points_choices = [-20.0, -5.0, 3.0, 15.0, 40.0] if draw(st.booleans()) else [-2.5, 0.1, 7.25, -0.3, 12.0]
    for r in range(draw(st.integers(1, 5))):
        event = draw(st.sampled_from(["a", "b", "c"]))
        lines += ['[[rules]]', f'id = "r{r}"', f'event = "ev.{event}"', f'describe = "rule {r}"',
                  f'lifetime = "{draw(st.sampled_from(LIFETIMES))}"']
        capping = draw(st.integers(0, 4)) == 0
        if capping:
            lines.append(f'score_cap = {draw(st.sampled_from([80, 120.5, 150]))}')
        if not capping or draw(st.booleans()):
            lines += [f'dimension = "{draw(st.sampled_from(dims))}"',
                      f'points = {draw(st.sampled_from(points_choices))}']
        if draw(st.booleans()):
            lines.append(f'match = {{ level = "{draw(st.sampled_from(["low", "high"]))}" }}')
        if draw(st.integers(0, 3)) == 0:
            lines.append(f'half_life = "{draw(st.sampled_from(["P30D", "P1Y"]))}"')
        if draw(st.booleans()):
            lines.append(f'max_per = {{ count = {draw(st.integers(1, 2))}, '
                         f'period = "{draw(st.sampled_from(["P1D", "P1W", "P1M", "P1Y"]))}" }}')
        lines.append('')
    if with_list:
        lines += ['[[lists]]', 'id = "watch"', 'label = "watch list"', 'case_attribute = "case"',
                  'enter = [ { event = "ev.list", duration = "P1Y" } ]', 'leave = [ { event = "ev.unlist" } ]',
                  '', '[[measures]]', 'id = "m-list"', 'when = { list = "watch" }', 'service = "s.list"',
                  'effect = "deny"', 'notice = "listed"', '']
    floors = sorted(draw(st.lists(st.sampled_from([60, 90, 100, 101, 130]), max_size=3, unique=True)), reverse=True)
    for t, floor in enumerate(floors):
        lines += ['[[tiers]]', f'id = "t{t}"', f'min = {floor}', '']
    if floors:
        lines += ['[[tiers]]', 'id = "bottom"', '']
        tiers = ", ".join(f'"t{t}"' for t in range(draw(st.integers(1, len(floors)))))
        lines += ['[[measures]]', 'id = "m-tier"', f'when = {{ tier = [{tiers}] }}', 'service = "s.tier"',
                  'effect = "discount"', 'notice = "tier"', '']
    lines += ['[[measures]]', 'id = "m-low"', f'when = {{ score_below = {draw(st.sampled_from([95, 100.5, 110]))} }}',
              'service = "s.low"', 'effect = "deny"', 'notice = "low"', '',
              '[[measures]]', 'id = "m-high"', 'when = { score_at_least = 101 }', 'service = "s.high"',
              'effect = "discount"', 'notice = "high"', '',
              '[[measures]]', 'id = "m-dim"',
              f'when = {{ dimension = "{draw(st.sampled_from(dims))}", {draw(st.sampled_from(["below", "at_least"]))} = 1 }}',
              'service = "s.dim"', 'effect = "deny"', 'notice = "dim"', '']
    return parse_policy("\n".join(lines), "random.toml")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_random_policies_equal_the_fold(data):
    policy = data.draw(policies())
    histories, at_us, known_at = data.draw(populations(policy, subjects=5, size=40))
    _assert_equal_to_the_fold(policy, histories, at_us, known_at)


# -- the calendar over arrays -----------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(ZONES + ["Asia/Beirut", "America/Santiago"]),
       st.lists(st.integers(instants.EARLIEST_US, instants.END_US - 1), min_size=1, max_size=30),
       st.sampled_from(["P1M", "P1Y", "P2Y", "P3D", "PT1H", "P1Y1M1D", "P1000Y"]),
       st.sampled_from(instants.CALENDAR_PERIODS))
def test_calendar_arrays_equal_instants(zone_name, values, duration, period):
    zone = zone_named(zone_name)
    array = np.array(values, dtype=np.int64)
    lasting = Duration.parse(duration).in_zone(zone)
    assert calendar.after(lasting, array).tolist() == [lasting.after(v) for v in values]
    assert calendar.period_starts(array, period, zone).tolist() == [instants.period_start(v, period, zone) for v in values]
    # near each other (one table) and far apart (np.unique) give the same answers
    near = array[:1] + np.arange(0, 40 * DAY, DAY // 3)
    assert calendar.after(lasting, near).tolist() == [lasting.after(v) for v in near.tolist()]
    utc = Duration.parse(duration).in_zone(timezone.utc)
    assert calendar.after(utc, array).tolist() == [utc.after(v) for v in values]


# -- the kernel's sort of rows within their groups --------------------------------------------


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([(instants.EARLIEST_US, instants.END_US - 1), (0, 999)]).flatmap(
           lambda keys: st.lists(st.tuples(st.integers(0, 40), st.integers(*keys)), max_size=60)),
       st.sampled_from([1 << 62, 5_000, 1_000, 1]))
def test_the_order_in_groups_is_lexsorts(rows, room):
    # room: the kernel's; small enough that the groups go in slices (keys within 1,000: 5 or 1 a
    # slice); smaller than any span, which leaves it to lexsort
    rows.sort(key=lambda row: row[0])  # the groups come in order; the keys in any order, with ties
    groups = np.array([g for g, _k in rows], dtype=np.int64)
    keys = np.array([k for _g, k in rows], dtype=np.int64)
    assert _order_in_groups(groups, keys, room).tolist() == np.lexsort((keys, groups)).tolist()


# -- the engine seam and the CLI --------------------------------------------------------------


def test_engine_named_knows_batch_and_refuses_others():
    assert engine_named("batch").name == "batch" and engine_named("fold").name == "fold"
    with pytest.raises(InvalidInput, match="unknown engine 'spork'"):
        engine_named("spork")


def test_batch_engine_compact_standings_equals_the_fold_engine():
    policy = PACKS["rongcheng"]
    histories = [("a", [Entry(1, EVENT, BASE, "a", "person", "traffic.violation", BASE - DAY, "p", "1",
                              {"offence": "speeding"})]), ("b", [])]
    batch = list(BatchEngine().compact_standings(policy, histories, BASE))
    fold_ = list(engine_named("fold").compact_standings(policy, histories, BASE))
    assert batch == fold_ and batch[0][1].score == 995


def _events_file(folder, lines):
    import json

    path = folder / "events.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return str(path)


def _stored(db):
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT * FROM standings ORDER BY subject").fetchall()


@pytest.mark.parametrize("pack", ["rongcheng", "china-judgment-defaulters", "sesame"])
def test_rebuild_with_the_batch_engine_stores_what_the_fold_stores(tmp_path, monkeypatch, pack):
    import random

    from socialcredit.registry import standings as standings_module

    monkeypatch.setattr(standings_module, "now_us", lambda: at("2026-05-01"))  # both rebuilds at one instant
    policy = PACKS[pack]
    rng = random.Random(9)
    types = sorted(t for t in policy.event_types if not t.startswith("peer.") and not t.endswith("opt_in"))
    lines = []
    for i in range(120):
        event_type = rng.choice(types)
        spec = policy.event_types[event_type]
        attributes = {}
        for name, a in spec.attributes.items():
            if not a.required and rng.random() < 0.5:
                continue
            if a.type == "string":
                attributes[name] = rng.choice(a.values) if a.values else rng.choice(["(2026)J1", "(2026)J2"])
            elif a.type in ("integer", "number"):
                attributes[name] = int(a.min if a.min is not None else 0) + rng.randint(0, 2)
            elif a.type == "boolean":
                attributes[name] = rng.random() < 0.5
            else:
                attributes[name] = "someone-else"
        day = rng.randint(1, 27)
        lines.append({"subject": f"{110105194912310000 + rng.randint(0, 30)}", "subject_kind": spec.subject_kinds[0],
                      "type": event_type, "occurred_at": f"2026-0{rng.randint(1, 4)}-{day:02d}T08:00:00Z",
                      "provider": "p", "key": str(i), "attributes": attributes})
    db = tmp_path / "r.db"
    url = f"sqlite:///{db}"
    sqlite_from_template(db)
    env = {"SOCIALCREDIT_DB": None, "SOCIALCREDIT_KEY": None, "SOCIALCREDIT_KEY_FILE": None, "COLUMNS": "1000"}
    runner = CliRunner()

    def run(*args):
        done = runner.invoke(app, ["--db", url, "--key-file", str(tmp_path / "k"), *args], env=env)
        assert done.exit_code == 0, (done.output, done.exception)
        return done

    run("init", "--policy", pack)
    ingested = run("ingest", _events_file(tmp_path, lines), "--skip-invalid", "--json")
    assert '"appended"' in ingested.stdout or ingested.exit_code == 0
    run("rebuild", "--engine", "fold")
    by_fold = _stored(db)
    import json

    report = json.loads(run("rebuild", "--engine", "batch", "--json").stdout)
    assert report["engine"] == "batch" and report["subjects"] == len(by_fold) > 0
    assert report["folded_one_by_one"] == sum(report["fallback_reasons"].values())
    assert _stored(db) == by_fold
    if pack == "rongcheng":
        assert report["folded_one_by_one"] == 0


def test_rebuild_with_an_unknown_engine_is_one_line(tmp_path):
    done = CliRunner().invoke(app, ["--db", f"sqlite:///{tmp_path / 'r.db'}", "rebuild", "--engine", "spork"],
                              env={"SOCIALCREDIT_DB": None, "COLUMNS": "1000"})
    assert done.exit_code == 2
    assert done.output.strip().count("\n") == 0 and "unknown engine 'spork'" in done.output
