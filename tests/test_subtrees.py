"""Tests for socialcredit.ledger.subtrees: proofs from stored subtree nodes, in memory and in the store.

Every proof is compared with the in-memory RFC 9162 functions of `merkle` (the reference,
itself checked against the published CT vectors in test_merkle.py) and checked with its
verifier. Small strata (1, 2, 3) put many stored levels into small trees; 8 is the ledger's.
"""

from __future__ import annotations

import importlib.util
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from socialcredit.errors import InvalidInput, Tampered
from socialcredit.ledger import merkle, subtrees
from socialcredit.registry import Registry
from socialcredit.results import ConsistencyProof, InclusionProof
from socialcredit.store import Checkpoint, Database, Store, schema

from conftest import allow_rewriting, behind_its_back, event
from test_merkle import CT_CONSISTENCY_PROOFS, CT_INCLUSION_PROOFS, CT_LEAVES, CT_ROOTS

LEAVES = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(1100)]
STRATA = (1, 2, 3, 8)
READERS = {stratum: subtrees.MemoryNodes(LEAVES, stratum) for stratum in STRATA}


class CountingReader:
    """Dummy hashes of the right count: enough to count the reads a proof makes, at any size."""

    def __init__(self):
        self.reads: list[int] = []

    def leaf_hashes(self, start, end):
        self.reads.append(end - start)
        return [bytes(32)] * (end - start)

    def nodes(self, level, start, end):
        self.reads.append(end - start)
        return [bytes(32)] * (end - start)


class LosingReader(subtrees.MemoryNodes):
    """A ledger that lost one stored hash: leaf `lost_leaf` or the first node of `lost_level`."""

    def __init__(self, leaves, stratum, lost_leaf=None, lost_level=None):
        super().__init__(leaves, stratum)
        self.lost_leaf, self.lost_level = lost_leaf, lost_level

    def leaf_hashes(self, start, end):
        return [h for i, h in enumerate(super().leaf_hashes(start, end), start) if i != self.lost_leaf]

    def nodes(self, level, start, end):
        found = super().nodes(level, start, end)
        return found[1:] if level == self.lost_level and start == 0 else found


# --------------------------------------------------------------------------
# In memory: equal to the RFC functions
# --------------------------------------------------------------------------


@pytest.mark.parametrize("stratum", STRATA)
def test_every_proof_of_small_trees_equals_the_rfc_proof(stratum):
    reader = READERS[stratum]
    for size in range(0, 70):
        leaves = LEAVES[:size]
        tree_root = merkle.root(leaves)
        assert subtrees.root(reader, size, stratum) == tree_root
        for index in range(size):
            proof = subtrees.inclusion_proof(reader, index, size, stratum)
            assert proof == merkle.inclusion_proof(leaves, index)
            assert merkle.verify_inclusion(leaves[index], index, size, proof, tree_root)
        for old_size in range(size + 1):
            proof = subtrees.consistency_proof(reader, old_size, size, stratum)
            assert proof == merkle.consistency_proof(leaves, old_size)
            assert merkle.verify_consistency(old_size, size, merkle.root(LEAVES[:old_size]), tree_root, proof)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(STRATA), st.integers(1, len(LEAVES)), st.data())
def test_random_proofs_equal_the_rfc_proofs(stratum, size, data):
    reader = READERS[stratum]
    leaves = LEAVES[:size]
    index = data.draw(st.integers(0, size - 1), label="index")
    old_size = data.draw(st.integers(0, size), label="old_size")
    tree_root = merkle.root(leaves)
    inclusion = subtrees.inclusion_proof(reader, index, size, stratum)
    consistency = subtrees.consistency_proof(reader, old_size, size, stratum)
    assert subtrees.root(reader, size, stratum) == tree_root
    assert inclusion == merkle.inclusion_proof(leaves, index)
    assert consistency == merkle.consistency_proof(leaves, old_size)
    assert merkle.verify_inclusion(leaves[index], index, size, inclusion, tree_root)
    assert merkle.verify_consistency(old_size, size, merkle.root(leaves[:old_size]), tree_root, consistency)


@pytest.mark.parametrize("stratum", STRATA)
@pytest.mark.parametrize(("index", "size", "path"), CT_INCLUSION_PROOFS)
def test_published_inclusion_vectors_through_stored_nodes(stratum, index, size, path):
    reader = subtrees.MemoryNodes(CT_LEAVES, stratum)
    assert subtrees.inclusion_proof(reader, index, size, stratum) == path
    assert subtrees.root(reader, size, stratum) == CT_ROOTS[size]


@pytest.mark.parametrize("stratum", STRATA)
@pytest.mark.parametrize(("old_size", "new_size", "proof"), CT_CONSISTENCY_PROOFS)
def test_published_consistency_vectors_through_stored_nodes(stratum, old_size, new_size, proof):
    reader = subtrees.MemoryNodes(CT_LEAVES, stratum)
    assert subtrees.consistency_proof(reader, old_size, new_size, stratum) == proof


@pytest.mark.parametrize("stratum", STRATA)
def test_one_stored_tree_gives_its_leaves_and_the_roots_of_its_prefixes(stratum):
    tree = subtrees.StoredTree(READERS[stratum], 1000, stratum)
    for size in range(0, 1001, 37):
        assert tree.root(size) == merkle.root(LEAVES[:size])
    assert tree.root() == merkle.root(LEAVES[:1000])
    assert [tree.leaf(index) for index in (0, 255, 256, 999)] == [LEAVES[0], LEAVES[255], LEAVES[256], LEAVES[999]]
    with pytest.raises(ValueError, match="size 1001 is larger than the tree size 1000"):
        tree.root(1001)
    with pytest.raises(ValueError, match="index 1000 is out of range for a tree of size 1000"):
        tree.leaf(1000)


def test_the_empty_tree():
    reader = subtrees.MemoryNodes()
    assert subtrees.root(reader, 0) == merkle.EMPTY_ROOT
    assert subtrees.consistency_proof(reader, 0, 0) == []


# --------------------------------------------------------------------------
# Addresses and the nodes an append completes
# --------------------------------------------------------------------------


@pytest.mark.parametrize("stratum", (1, 2, 3))
def test_appends_report_exactly_the_complete_subtrees_of_stored_levels(stratum):
    frontier = merkle.Frontier()
    reported = []
    for position, leaf in enumerate(LEAVES[:300]):
        for level, index, digest in subtrees.append_leaf(frontier, leaf, stratum):
            # A node is reported by the leaf that completes it, with the root of its leaves.
            assert (index + 1) << level == position + 1
            assert digest == merkle.root(LEAVES[index << level:(index + 1) << level])
            reported.append((level, index))
    expected = [(level, index) for level in range(stratum, 9, stratum) for index in range(300 >> level)]
    assert sorted(reported) == sorted(expected)
    assert frontier.root() == merkle.root(LEAVES[:300])


def test_a_batch_append_reports_the_same_nodes_as_one_leaf_at_a_time():
    one_by_one, batch = merkle.Frontier(), merkle.Frontier()
    singles = [node for leaf in LEAVES[:600] for node in subtrees.append_leaf(one_by_one, leaf, 2)]
    assert subtrees.append_leaves(batch, LEAVES[:600], 2) == singles
    assert batch == one_by_one


def test_frontier_append_returns_the_roots_it_completes():
    frontier = merkle.Frontier.from_leaves(LEAVES[:7])
    completed = frontier.append(LEAVES[7])  # size 8: completes the subtrees of 2, 4 and 8 leaves
    assert completed == [merkle.root(LEAVES[6:8]), merkle.root(LEAVES[4:8]), merkle.root(LEAVES[:8])]
    assert frontier.append(LEAVES[8]) == []


@pytest.mark.parametrize("size", [1_000_000, 10_000_000, 10_000_001, 2**24 - 1])
def test_a_proof_reads_a_few_rows_of_at_most_a_tile(size):
    rng = random.Random(size)
    for _ in range(20):
        inclusion, consistency = CountingReader(), CountingReader()
        subtrees.inclusion_proof(inclusion, rng.randrange(size), size)
        subtrees.consistency_proof(consistency, rng.randrange(1, size), size)
        for reader in (inclusion, consistency):
            # Two tiles (the leaf's path and the right edge) per band of 8 levels: 24 levels, 6 reads.
            assert 1 <= len(reader.reads) <= 6
            assert max(reader.reads) <= 2**subtrees.STRATUM


def test_proof_addresses_are_rfc_subtrees():
    # Index 5 of 8: the leaf to its left, the pair to its right, the left half.
    assert subtrees.inclusion_ranges(5, 8) == [(4, 5), (6, 8), (0, 4)]
    # 6 of 7: the right edge is one leaf, so the proof is the two perfect subtrees to its left.
    assert subtrees.inclusion_ranges(6, 7) == [(4, 6), (0, 4)]
    # 6 -> 8: the old tree's last subtree [4, 6), its sibling, the left half.
    assert subtrees.consistency_ranges(6, 8) == [(4, 6), (6, 8), (0, 4)]
    # 4 -> 8: the old tree is a perfect subtree the verifier holds; only its sibling is needed.
    assert subtrees.consistency_ranges(4, 8) == [(4, 8)]


# --------------------------------------------------------------------------
# Bad arguments and missing data
# --------------------------------------------------------------------------


def test_bad_arguments_raise_the_rfc_functions_errors():
    reader = READERS[8]
    cases = [
        (lambda: subtrees.inclusion_proof(reader, 5, 5), "index 5 is out of range for a tree of size 5"),
        (lambda: subtrees.inclusion_proof(reader, -1, 5), "out of range"),
        (lambda: subtrees.inclusion_proof(reader, 0, 0), "out of range"),
        (lambda: subtrees.consistency_proof(reader, 6, 5), "old_size 6 is larger than the tree size 5"),
        (lambda: subtrees.consistency_proof(reader, -1, 5), "non-negative"),
        (lambda: subtrees.root(reader, -1), "non-negative"),
        (lambda: subtrees.root(reader, 5, stratum=0), "stratum"),
    ]
    for call, message in cases:
        with pytest.raises(ValueError, match=message):
            call()


@pytest.mark.parametrize("stratum", (1, 3, 8))
def test_a_lost_leaf_hash_is_reported_as_tampering(stratum):
    reader = LosingReader(LEAVES[:600], stratum, lost_leaf=2)
    with pytest.raises(Tampered, match=r"missing stored hashes: asked for the leaf hashes of entries #\d+ to #\d+, got \d+ of \d+"):
        subtrees.inclusion_proof(reader, 3, 600, stratum)
    # A proof that needs nothing below the lost leaf's stored ancestor does not notice.
    assert subtrees.inclusion_proof(reader, 599, 600, stratum) == merkle.inclusion_proof(LEAVES[:600], 599)


@pytest.mark.parametrize("stratum", (2, 3))
def test_a_lost_node_is_reported_as_tampering(stratum):
    reader = LosingReader(LEAVES[:600], stratum, lost_level=stratum)
    with pytest.raises(Tampered, match=f"subtree nodes #0 to #.* of level {stratum}, got"):
        subtrees.inclusion_proof(reader, 0, 600, stratum)


def test_a_malformed_stored_hash_is_reported_as_tampering():
    class Truncating(subtrees.MemoryNodes):
        def leaf_hashes(self, start, end):
            return [h[:31] for h in super().leaf_hashes(start, end)]

    with pytest.raises(Tampered, match="malformed hash"):
        subtrees.root(Truncating(LEAVES[:10]), 10)


# --------------------------------------------------------------------------
# In the store (SQLite and PostgreSQL)
# --------------------------------------------------------------------------


def _synthetic_store(url: str, count: int, stratum: int) -> Store:
    """A store holding `count` synthetic entries and their nodes at `stratum`, in appends of odd sizes."""
    db = Database.open(url, create=True)
    schema.migrate(db)  # the schema, no registry: these entries are not events of any policy
    store = Store(db)
    frontier = merkle.Frontier()
    rng = random.Random(count)
    seq = 0
    while seq < count:
        batch = range(seq, min(count, seq + rng.choice((1, 2, 7, 31, 100))))
        rows = [(n, "event", 0, "test", f"k{n}", None, None, None, f"body {n}", LEAVES[n], None) for n in batch]
        nodes = subtrees.append_leaves(frontier, LEAVES[batch.start:batch.stop], stratum)
        with db.write(append=True) as tx:
            store.ledger.append(tx, rows, Checkpoint(frontier.size, frontier.root(), frontier.to_json(), 0), nodes)
        seq = batch.stop
    return store


@pytest.mark.parametrize("stratum", STRATA)
def test_store_backed_proofs_equal_the_rfc_proofs(database_url, stratum):
    count = 600
    store = _synthetic_store(database_url, count, stratum)
    rng = random.Random(stratum)
    try:
        with store.ledger.tree_reader() as tree:
            for size in [1, 2, 255, 256, 257, 511, 512, count, *rng.sample(range(1, count + 1), 20)]:
                leaves = LEAVES[:size]
                assert subtrees.root(tree, size, stratum) == merkle.root(leaves)
                for index in {0, size - 1, *rng.sample(range(size), min(size, 5))}:
                    assert subtrees.inclusion_proof(tree, index, size, stratum) == merkle.inclusion_proof(leaves, index)
                for old_size in {0, 1, size, *rng.sample(range(size + 1), min(size + 1, 5))}:
                    assert (subtrees.consistency_proof(tree, old_size, size, stratum)
                            == merkle.consistency_proof(leaves, old_size))
    finally:
        store.close()


def _events(count: int, start: int) -> list[dict]:
    return [event("alice" if i % 3 else "bob", "traffic.violation", f"2026-01-{1 + i % 28:02d}T08:00:00Z",
                  start + i, offence=f"o{i}") for i in range(count)]


def _grown_registry(make_registry) -> tuple[Registry, list[int]]:
    """A registry grown by appends of odd sizes across the first two 256-leaf tiles; its sizes after each."""
    registry = make_registry()
    sizes = [registry.size()]
    for start, count in ((0, 300), (1000, 7), (2000, 205), (3000, 1), (4000, 98)):
        registry.ingest(_events(count, start))
        sizes.append(registry.size())
    return registry, sizes


def _stored_nodes(registry: Registry) -> list[tuple]:
    with behind_its_back(registry) as conn:
        rows = conn.execute(text("SELECT level, idx, hash FROM merkle_nodes ORDER BY level, idx")).all()
    return [(level, index, bytes(digest)) for level, index, digest in rows]


def _expected_nodes(registry: Registry) -> list[tuple]:
    leaves = registry.store.ledger.leaf_hashes(registry.size())
    return sorted(subtrees.append_leaves(merkle.Frontier(), leaves))


def test_a_registry_gives_the_proofs_of_the_full_leaf_computation(make_registry):
    registry, sizes = _grown_registry(make_registry)
    size = sizes[-1]
    assert size == 612
    leaves = registry.store.ledger.leaf_hashes(size)
    assert _stored_nodes(registry) == _expected_nodes(registry) == [
        (8, 0, merkle.root(leaves[:256])), (8, 1, merkle.root(leaves[256:512]))]
    rng = random.Random(7)
    # Checkpoint sizes (roots from the checkpoint) and others (roots from the tree).
    for known_at in [*sizes[1:], 256, 257, 511, 513, *rng.sample(range(1, size), 6)]:
        tree = leaves[:known_at]
        for seq in {0, known_at - 1, *rng.sample(range(known_at), min(known_at, 4))}:
            assert registry.inclusion_proof(seq, known_at) == InclusionProof(
                seq, known_at, leaves[seq].hex(), merkle.root(tree).hex(),
                [h.hex() for h in merkle.inclusion_proof(tree, seq)])
        for old_size in {0, 1, known_at, *rng.sample(range(known_at + 1), 4)}:
            assert registry.consistency_proof(old_size, known_at) == ConsistencyProof(
                old_size, known_at, merkle.root(leaves[:old_size]).hex(), merkle.root(tree).hex(),
                [h.hex() for h in merkle.consistency_proof(tree, old_size)])
    assert registry.inclusion_proof(600).root == registry.root().root
    assert registry.verify().ok


def test_bad_proof_requests_keep_their_one_line_errors(registry):
    registry.ingest(_events(3, 0))
    cases = [
        (lambda: registry.inclusion_proof(4), "entry #4 is not in a ledger of size 4"),
        (lambda: registry.inclusion_proof(-1), "entry #-1 is not in a ledger of size 4"),
        (lambda: registry.inclusion_proof(0, 5), "known-at size must be between 1 and the ledger size 4, got 5"),
        (lambda: registry.consistency_proof(5), "old size 5 must be between 0 and 4"),
        (lambda: registry.consistency_proof(2, 0), "known-at size must be between 1 and the ledger size 4, got 0"),
    ]
    for call, message in cases:
        with pytest.raises(InvalidInput, match=message):
            call()


def _sql(registry: Registry, statement: str, **params) -> None:
    with behind_its_back(registry) as conn:
        conn.execute(text(statement), params)


def test_stored_nodes_cannot_be_updated_or_deleted(make_registry):
    registry, _ = _grown_registry(make_registry)
    for statement in ("UPDATE merkle_nodes SET hash = hash WHERE idx = 0", "DELETE FROM merkle_nodes WHERE idx = 0"):
        with pytest.raises(DBAPIError, match="append-only"):
            _sql(registry, statement)
    assert len(_stored_nodes(registry)) == 2


def test_verify_reports_a_rewritten_node_and_proofs_through_it_fail(make_registry):
    registry, _ = _grown_registry(make_registry)
    allow_rewriting(registry, "merkle_nodes")
    _sql(registry, "UPDATE merkle_nodes SET hash = :h WHERE level = 8 AND idx = 1", h=merkle.leaf_hash(b"forged"))
    report = registry.verify()
    assert not report.ok
    assert [(p.kind, p.entry) for p in report.problems] == [("subtree", 256)]
    assert report.problems[0].message == ("the stored subtree node over entries #256 to #511 (level 8, #1) "
                                             "does not match the entries (rewritten)")
    # A proof that reads the forged node no longer verifies against the checkpoint root.
    proof = registry.inclusion_proof(10)
    assert not merkle.verify_inclusion(bytes.fromhex(proof.leaf_hash), 10, proof.size,
                                       [bytes.fromhex(h) for h in proof.proof], bytes.fromhex(proof.root))


def test_verify_reports_a_deleted_node_and_proofs_refuse(make_registry):
    registry, _ = _grown_registry(make_registry)
    allow_rewriting(registry, "merkle_nodes")
    _sql(registry, "DELETE FROM merkle_nodes WHERE level = 8 AND idx = 0")
    problems = registry.verify().problems
    assert [(p.kind, p.entry) for p in problems] == [("subtree", 0)]
    assert problems[0].message.endswith("(level 8, #0) is missing (deleted)")
    with pytest.raises(Tampered, match="subtree nodes #0 to #1 of level 8, got 1 of 2"):
        registry.inclusion_proof(600)


# --------------------------------------------------------------------------
# Migration 0004: a registry from before it gets its nodes
# --------------------------------------------------------------------------


def _to_schema_0002(registry: Registry) -> None:
    """Take the registry back to migration 0002's schema: no merkle_nodes table."""
    from alembic import command

    with behind_its_back(registry) as conn:
        command.downgrade(schema._alembic_config(conn), "0002")
        assert not conn.dialect.has_table(conn, "merkle_nodes")


def test_an_old_registry_gets_its_nodes_backfilled(make_registry, database_url, tmp_path):
    registry, sizes = _grown_registry(make_registry)
    before = [registry.inclusion_proof(seq) for seq in (0, 300, 611)]
    expected = _stored_nodes(registry)
    _to_schema_0002(registry)
    registry.close()
    with Registry.open(database_url, key_file=tmp_path / "registry.key") as upgraded:
        assert _stored_nodes(upgraded) == expected == _expected_nodes(upgraded)
        assert [upgraded.inclusion_proof(seq) for seq in (0, 300, 611)] == before
        assert upgraded.verify().ok
        upgraded.ingest(_events(500, 9000))  # appends go on writing nodes after the backfill
        assert _stored_nodes(upgraded) == _expected_nodes(upgraded)
        assert len(_stored_nodes(upgraded)) == 4


def _migration_0004():
    from importlib import resources

    path = resources.files("socialcredit.store") / "migrations" / "versions" / "0004_merkle_nodes.py"
    spec = importlib.util.spec_from_file_location("migration_0004", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_backfill_streams_leaves_in_batches_and_stops_at_a_missing_entry(make_registry, monkeypatch):
    registry, _ = _grown_registry(make_registry)
    leaves = registry.store.ledger.leaf_hashes(registry.size())
    migration = _migration_0004()
    monkeypatch.setattr(migration, "_BATCH", 100)
    with behind_its_back(registry) as conn:
        batches = list(migration._stored_leaf_batches(conn))
    assert [len(b) for b in batches] == [100] * 6 + [12]
    assert [leaf for batch in batches for leaf in batch] == leaves
    allow_rewriting(registry)
    _sql(registry, "DELETE FROM entries WHERE seq = 250")
    with behind_its_back(registry) as conn:
        batches = list(migration._stored_leaf_batches(conn))
    assert [leaf for batch in batches for leaf in batch] == leaves[:250]
