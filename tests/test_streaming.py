"""A batch longer than a chunk streams (read, validated, appended chunk by chunk in one
transaction), and comes out exactly as the same batch in one piece: the same answer (accepted,
duplicates, rejected, every error with its line), the same ledger, the same standings, all of
it or none of it.

The chunk is made tiny here (`STREAM_CHUNK`), so that a few events cross several chunks.
"""

from __future__ import annotations

import itertools
import json
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit.instants import format_instant, now_us
from socialcredit.intake import parallel
from socialcredit.intake.readers import read_events, read_jsonl
from socialcredit.registry import Registry
from socialcredit.registry import ingest as ingest_module
from socialcredit.scoring.compact import compact
from socialcredit.scoring.fold import fold

from processes import clean_env, cli, session_members, start

DAY = 86_400_000_000
_counter = itertools.count()

TYPES = [
    ("finance.bank_arrears", {}),
    ("court.breach_judgment", {"case_id": "c"}),
    ("commerce.other_dishonesty", {"severity": "serious"}),
    ("traffic.violation", {}),
    ("civic.volunteering", {}),
    ("no.such_type", {}),  # refused by validation
    ("commerce.other_dishonesty", {"severity": "unheard-of"}),  # refused: not one of its values
]


@contextmanager
def chunks_of(size: int):
    saved = ingest_module.STREAM_CHUNK
    ingest_module.STREAM_CHUNK = size
    try:
        yield
    finally:
        ingest_module.STREAM_CHUNK = saved


def _answer(result):
    return (result.accepted, result.duplicates, result.rejected, [(e.line, e.error) for e in result.errors],
            result.written)


_pairs: dict[int, tuple[Registry, Registry]] = {}


def _pair(tmp_path_factory) -> tuple[Registry, Registry]:
    """Two SQLite registries that grow in step: one takes batches whole, the other streamed."""
    if not _pairs:
        folder = tmp_path_factory.mktemp("streaming")
        _pairs[0] = tuple(Registry.init(f"sqlite:///{folder}/{name}.db", "rongcheng", key_file=folder / f"{name}.key")
                          for name in ("whole", "streamed"))
    return _pairs[0]


@pytest.fixture(scope="module", autouse=True)
def _close_pairs():
    yield
    for registry in _pairs.pop(0, ()):
        registry.close()


JUNK = ["", "   ", "{not json", "[1, 2]", '{"subject": "x", "type": "traffic.violation", "color": 1}']


@contextmanager
def blocks_of(size: int):
    saved = parallel.BLOCK
    parallel.BLOCK = size
    try:
        yield
    finally:
        parallel.BLOCK = saved


def _lines(batch: list[dict], junk: list[tuple[int, str]]) -> list[str]:
    """The batch as JSON lines, with blank and bad lines put in at the drawn places."""
    lines = [json.dumps(event) + "\n" for event in batch]
    for place, line in sorted(junk, reverse=True):
        lines.insert(min(place, len(lines)), line + "\n")
    return lines


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    history=st.lists(st.tuples(st.integers(0, 3), st.sampled_from(TYPES), st.integers(-900, 0), st.integers(0, 6)),
                     min_size=1, max_size=30),
    chunk=st.integers(1, 6),
    skip_invalid=st.booleans(),
    repeat=st.booleans(),
    junk=st.lists(st.tuples(st.integers(0, 30), st.sampled_from(JUNK)), max_size=3),
    as_file=st.booleans(),
    block=st.integers(1, 5),
)
def test_a_streamed_batch_equals_the_batch_in_one_piece(tmp_path_factory, history, chunk, skip_invalid, repeat, junk,
                                                        as_file, block):
    """`as_file`: the streamed registry reads JSON lines as a file is read (`read_events`): the
    lines after the first chunk are parsed and validated by a second process."""
    whole, streamed = _pair(tmp_path_factory)
    run = next(_counter)
    now = now_us()
    events = [{"subject": f"s{run}-{person}", "type": event_type, "provider": "gen",
               "occurred_at": format_instant(now + day * DAY - (day * DAY) % 1_000_000),
               "key": f"{run}-{key}", "attributes": attributes}  # keys repeat: duplicates and conflicts
              for person, (event_type, attributes), day, key in history]
    batches = [events, events[: len(events) // 2]] if repeat else [events]  # the second: all already in
    for batch in batches:
        lines = _lines(batch, junk)
        one = whole.ingest(list(read_jsonl(lines)), skip_invalid=skip_invalid)
        with chunks_of(chunk), blocks_of(block):
            other = streamed.ingest(read_events(lines, "jsonl") if as_file else list(read_jsonl(lines)),
                                    skip_invalid=skip_invalid)
        assert _answer(other) == _answer(one)
        assert other.ledger_size == one.ledger_size == streamed.size() == whole.size()
    for person in range(4):
        ref = f"s{run}-{person}"
        a, b = whole.materialized(whole.pseudonym(ref)), streamed.materialized(streamed.pseudonym(ref))
        assert (a is None) == (b is None)
        if b is None:
            continue
        assert b == a
        subject = streamed.pseudonym(ref)
        entries = streamed.store.ledger.entries_for_subject(subject)
        at = b.valid_from_us if b.valid_from_us is not None else now
        assert b == compact(fold(streamed.policy, entries, at, None, subject))
        assert streamed.store.standings.get(subject).known_size == whole.store.standings.get(
            whole.pseudonym(ref)).known_size
        # the fold state kept for the next batch: the kernel's (a new subject's) is the fold's
        assert _fold_state(streamed, subject) == _fold_state(whole, whole.pseudonym(ref))
        assert [(e.seq, e.type, e.occurred_us, e.key) for e in entries] == [
            (e.seq, e.type, e.occurred_us, e.key)
            for e in whole.store.ledger.entries_for_subject(whole.pseudonym(ref))]
    assert streamed.verify().ok is True


def _fold_state(registry: Registry, subject: str) -> tuple | None:
    with registry.store.db.read() as t:
        row = registry.store.fold_states.get_many(t, [subject]).get(subject)
    return None if row is None else (row.policy_digest, row.known_size, row.body)


def _events(prefix: str, count: int, day0: int = 400):
    now = now_us()
    return [{"subject": f"{prefix}{i % 5}", "type": "traffic.violation", "provider": "gen",
             "occurred_at": format_instant(now - (day0 - i) * DAY - (now % 1_000_000)), "key": f"{prefix}-{i}",
             "attributes": {}} for i in range(count)]


def test_one_bad_line_late_in_a_streamed_file_writes_nothing(make_registry):
    registry = make_registry()
    size = registry.size()
    events = _events("late", 40) + [{"subject": "x", "type": "no.such_type", "provider": "gen",
                                     "occurred_at": "2026-01-01T00:00:00Z", "key": "bad"}]
    with chunks_of(7):
        result = registry.ingest(events)
    assert (result.accepted, result.rejected, result.written, result.ledger_size) == (0, 1, False, size)
    assert [e.line for e in result.errors] == [41]
    assert registry.size() == size and registry.materialized(registry.pseudonym("late0")) is None
    with chunks_of(7):
        result = registry.ingest(events, skip_invalid=True)
    assert (result.accepted, result.rejected, result.written, result.ledger_size) == (40, 1, True, size + 40)
    assert registry.store.standings.get(registry.pseudonym("late0")).known_size == size + 40
    assert registry.verify().ok is True


def test_a_key_reused_across_chunks_names_the_line_that_used_it(make_registry):
    registry = make_registry()
    events = _events("reuse", 20)
    changed = {**events[2], "occurred_at": format_instant(now_us() - 3 * DAY - now_us() % 1_000_000)}
    with chunks_of(5):
        result = registry.ingest(events + [events[3], changed])
    assert (result.accepted, result.duplicates, result.written) == (0, 0, False)
    assert [(e.line, e.error) for e in result.errors] == [
        (22, "key 'reuse-2' of provider 'gen' is already used on line 3 for a different event")]
    with chunks_of(5):
        result = registry.ingest(events + [events[3], changed], skip_invalid=True)
    assert (result.accepted, result.duplicates, result.rejected, result.written) == (20, 1, 1, True)


def test_a_long_file_not_utf_8_late_is_refused_in_one_line_and_writes_nothing(make_registry, tmp_path):
    """The rest of a long file is read by a thread for the second process: a read error
    there (bytes that are not UTF-8, past the first chunk) is the CLI's one-line refusal that
    names the line, as it is when this process reads it, and no process of the ingest is left."""
    registry = make_registry()
    size = registry.size()
    path = tmp_path / "late.jsonl"
    count = ingest_module.STREAM_CHUNK + 3 * parallel.BLOCK
    with path.open("wb") as out:
        for event in _events("utf", count):
            out.write(json.dumps(event).encode() + b"\n")
        out.write(b'{"subject": "caf\xe9"}\n')  # Latin-1, as an old exporter writes it
    done = start(cli(registry.store.db.url.text, "--key-file", str(tmp_path / "registry.key"), "ingest", str(path)),
                 clean_env())
    stdout, stderr = done.communicate(timeout=120)
    assert done.returncode == 2, stderr
    assert stderr.strip().splitlines() == [
        f"error: {path} line {count + 1}: not UTF-8 text (invalid continuation byte at byte 17 of the line)"]
    assert session_members(done.pid) == []
    assert registry.size() == size
