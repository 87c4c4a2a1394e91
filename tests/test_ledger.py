"""The ledger: append-only, idempotent, and tamper-evident (on SQLite and PostgreSQL)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from socialcredit.ledger import merkle
from socialcredit.ledger.entries import EVENT, Entry, canonical_json

from conftest import allow_tampering, behind_its_back, event
from socialcredit.results import TreeHead


def _events(count, start=0, subject="alice"):
    return [
        event(subject, "traffic.violation", f"2026-01-{1 + i % 28:02d}T08:00:00Z", start + i, offence=f"o{i}")
        for i in range(count)
    ]


def _allow_tampering(registry):
    with behind_its_back(registry) as conn:
        allow_tampering(conn, registry.store.db.backend)


def _sql(registry, statement, **params):
    with behind_its_back(registry) as conn:
        result = conn.execute(text(statement), params)
        return result.all() if result.returns_rows else None


def test_entries_cannot_be_updated_or_deleted(registry):
    registry.ingest(_events(3))
    for statement in ("UPDATE entries SET body = 'x' WHERE seq = 1", "DELETE FROM entries WHERE seq = 1"):
        with pytest.raises(DBAPIError, match="append-only"):
            _sql(registry, statement)
    assert registry.verify().ok


def test_sequence_numbers_are_gapless_and_root_matches_stored_leaves(registry):
    registry.ingest(_events(5))
    registry.ingest(_events(4, start=100))
    size = registry.size()
    assert size == 1 + 5 + 4  # the policy activation is entry #0
    leaves = registry.store.ledger.leaf_hashes(size)
    assert registry.root() == TreeHead(size, merkle.root(leaves).hex())
    bodies = [json.loads(row[8]) for row in registry.store.ledger.iter_rows()]
    assert [b["seq"] for b in bodies] == list(range(size))
    assert bodies[0]["kind"] == "policy" and bodies[0]["policy"]["id"] == "rongcheng"


def test_same_key_same_body_is_a_duplicate(registry):
    first = registry.ingest(_events(3))
    again = registry.ingest(_events(3))
    assert (first.accepted, first.duplicates) == (3, 0)
    assert (again.accepted, again.duplicates, again.rejected) == (0, 3, 0)
    assert again.ledger_size == first.ledger_size and again.root == first.root


def test_same_key_different_body_is_refused_and_nothing_is_written(registry):
    registry.ingest(_events(2))
    before = registry.root()
    changed = _events(2)
    changed[1]["attributes"]["offence"] = "something else"
    fresh = event("bob", "traffic.violation", "2026-02-01T00:00:00Z", "new-key")
    result = registry.ingest([fresh, *changed])
    assert result.accepted == 0 and not result.written
    assert [e.line for e in result.errors] == [3]
    assert "already used for a different event" in result.errors[0].error
    assert registry.root() == before


def test_a_key_reused_inside_one_batch(registry):
    one = event("alice", "traffic.violation", "2026-02-01T00:00:00Z", "k")
    same = dict(one)
    other = event("alice", "traffic.violation", "2026-02-02T00:00:00Z", "k")
    result = registry.ingest([one, same])
    assert (result.accepted, result.duplicates) == (1, 1)
    refused = registry.ingest([event("bob", "traffic.violation", "2026-02-01T00:00:00Z", "k2"), other])
    assert refused.accepted == 0 and refused.errors and "already used" in refused.errors[0].error


def test_keys_are_unique_per_provider_not_globally(registry):
    a = event("alice", "traffic.violation", "2026-02-01T00:00:00Z", "k", provider="police")
    b = event("alice", "utility.late_payment", "2026-02-01T00:00:00Z", "k", provider="water")
    assert registry.ingest([a, b]).accepted == 2


def test_inclusion_and_consistency_proofs_verify(registry):
    registry.ingest(_events(6))
    old = registry.root()
    registry.ingest(_events(7, start=50))
    new = registry.root()
    for seq in range(new.size):
        proof = registry.inclusion_proof(seq)
        assert merkle.verify_inclusion(
            bytes.fromhex(proof.leaf_hash), seq, proof.size,
            [bytes.fromhex(h) for h in proof.proof], bytes.fromhex(new.root),
        )
    consistency = registry.consistency_proof(old.size)
    assert consistency.old_root == old.root and consistency.new_root == new.root
    assert merkle.verify_consistency(
        old.size, new.size, bytes.fromhex(old.root), bytes.fromhex(new.root),
        [bytes.fromhex(h) for h in consistency.proof],
    )


def test_verify_passes_on_an_untouched_ledger(registry):
    registry.ingest(_events(20))
    report = registry.verify()
    assert report.ok and report.problems == []
    assert report.size == report.entries == 21
    assert report.root == registry.root().root


def _verify_after_tampering(registry, events: int, statement: str):
    registry.ingest(_events(events))
    _allow_tampering(registry)
    _sql(registry, statement)
    return registry.verify()


def test_verify_reports_a_modified_entry(registry):
    report = _verify_after_tampering(registry, 5, "UPDATE entries SET body = replace(body, '\"o3\"', '\"o9\"') "
                                                  "WHERE seq = 4")
    assert not report.ok
    assert {(p.kind, p.entry) for p in report.problems} >= {("modified", 4)}


def test_verify_reports_a_rewrite_that_also_fixes_the_leaf_hash(registry):
    registry.ingest(_events(5))
    _allow_tampering(registry)
    row = _sql(registry, "SELECT body FROM entries WHERE seq = 2")[0][0]
    forged = row.replace('"o1"', '"forged"')
    _sql(registry, "UPDATE entries SET body = :b, leaf_hash = :h WHERE seq = 2",
         b=forged, h=merkle.leaf_hash(forged.encode()))
    report = registry.verify()
    assert not report.ok
    assert [p.kind for p in report.problems] == ["checkpoint"]
    assert "rewritten" in report.problems[0].message


def test_verify_reports_an_edited_column_the_fold_reads(registry):
    registry.ingest(_events(3))
    _allow_tampering(registry)
    _sql(registry, "UPDATE entries SET type = 'civic.heroic_act' WHERE seq = 2")
    problems = registry.verify().problems
    assert ("modified", 2) in {(p.kind, p.entry) for p in problems}
    assert "column type" in problems[0].message


def test_verify_reports_a_time_no_parser_reads_as_a_modified_entry(registry):
    # What the registry wrote for a year before 1000 until it zero-padded years: verify then
    # stopped with a parse error instead of reporting the entry.
    report = _verify_after_tampering(registry, 3, "UPDATE entries SET body = replace(body, '\"2026-01-02T', "
                                                  "'\"999-01-02T') WHERE seq = 2")
    assert not report.ok
    assert ("modified", 2) in {(p.kind, p.entry) for p in report.problems}
    assert any("column occurred_at disagrees" in p.message for p in report.problems)


def test_verify_reports_a_deleted_entry(registry):
    registry.ingest(_events(5))
    _allow_tampering(registry)
    _sql(registry, "DELETE FROM entries WHERE seq = 3")
    kinds = {(p.kind, p.entry) for p in registry.verify().problems}
    assert ("deleted", 3) in kinds


def test_verify_reports_entries_deleted_from_the_end(registry):
    registry.ingest(_events(5))
    _allow_tampering(registry)
    _sql(registry, "DELETE FROM entries WHERE seq >= 4")
    problems = registry.verify().problems
    assert [p.kind for p in problems] == ["deleted"]
    assert "only 4 are stored" in problems[0].message


def test_verify_reports_an_entry_inserted_behind_the_registrys_back(registry):
    registry.ingest(_events(3))
    forged = Entry(4, EVENT, 0, "1:" + "0" * 32, "person", "civic.heroic_act", 0, "x", "forged", {})
    body = forged.canonical()
    _sql(registry, "INSERT INTO entries (seq, kind, recorded_us, provider, key, subject, type, occurred_us, body, "
                   "leaf_hash) VALUES (4, 'event', 0, 'x', 'forged', :s, 'civic.heroic_act', 0, :b, :h)",
         s=forged.subject, b=body, h=merkle.leaf_hash(body.encode()))
    problems = registry.verify().problems
    assert [(p.kind, p.entry) for p in problems] == [("inserted", 4)]


def test_verify_reports_reordered_entries(registry):
    registry.ingest(_events(4))
    _allow_tampering(registry)
    # Swap entries 2 and 3 wholesale (bodies and hashes move with them).
    _sql(registry, "UPDATE entries SET seq = -1 WHERE seq = 2")
    _sql(registry, "UPDATE entries SET seq = 2 WHERE seq = 3")
    _sql(registry, "UPDATE entries SET seq = 3 WHERE seq = -1")
    kinds = {(p.kind, p.entry) for p in registry.verify().problems}
    assert ("reordered", 2) in kinds and ("reordered", 3) in kinds


def test_void_is_a_new_entry_and_the_original_stays(registry):
    registry.ingest([event("alice", "traffic.violation", "2026-01-05T00:00:00Z", 1)])
    assert registry.standing("alice", at="2026-02-01").score == 995
    seq = registry.void(1, "ticket issued to the wrong person").void_entry
    assert seq == 2 and registry.size() == 3
    assert registry.store.ledger.entry(1).type == "traffic.violation"
    assert registry.standing("alice", at="2026-02-01").score == 1000
    # As the registry knew it before the correction, the ticket still counted.
    assert registry.standing("alice", at="2026-02-01", known_at=2).score == 995
    assert registry.verify().ok


@settings(max_examples=60, deadline=None)
@given(
    attributes=st.dictionaries(
        st.text(min_size=1, max_size=8),
        st.one_of(st.text(max_size=12), st.integers(-10**9, 10**9), st.booleans(),
                  st.floats(allow_nan=False, allow_infinity=False)),
        max_size=4,
    ),
    key=st.text(max_size=20),
    provider=st.text(min_size=1, max_size=20),
    occurred=st.integers(0, 4_102_444_800_000_000),
)
def test_the_fast_canonical_body_equals_sorted_json(attributes, key, provider, occurred):
    entry = Entry(7, EVENT, 1_790_000_000_123_456, "1:" + "a" * 32, "person", "finance.bank_arrears", occurred,
                  provider, key, attributes)
    assert entry.canonical() == canonical_json(entry.body())
    with_json = entry._replace(attributes_json=canonical_json(attributes) if attributes else "{}")
    assert with_json.canonical() == canonical_json(entry.body())
    assert Entry.from_body(json.loads(entry.canonical())).canonical() == entry.canonical()


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path):
    from socialcredit.registry import Registry

    with Registry.init(f"sqlite:///{tmp_path}/r.db", "rongcheng") as registry:
        with behind_its_back(registry) as conn:
            assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert conn.exec_driver_sql("PRAGMA synchronous").scalar() == 2  # FULL


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(
    st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True),
    st.one_of(st.text(max_size=12), st.integers(-10**18, 10**18), st.booleans(),
              st.floats(allow_nan=False, allow_infinity=False)),
    max_size=6,
))
def test_the_fast_attribute_encoder_equals_sorted_json(attributes):
    from socialcredit.ledger.entries import attributes_json

    assert attributes_json(attributes) == canonical_json(attributes)
