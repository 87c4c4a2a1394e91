"""EigenTrust against networkx's personalized PageRank, and rating-ring detection."""

from __future__ import annotations

import networkx as nx
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialcredit.ratings.collusion import find_rings
from socialcredit.ratings.trust import eigentrust, local_trust, pretrusted_vector


def _networkx_pagerank(raters, ratees, stars, n, seeds, teleport):
    local = local_trust(raters, ratees, stars, n)
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    coo = local.tocoo()
    graph.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist()))
    p = pretrusted_vector(n, seeds)
    personalization = {i: float(p[i]) for i in range(n)}
    ranks = nx.pagerank(graph, alpha=1 - teleport, personalization=personalization, dangling=personalization,
                        tol=1e-15, max_iter=10_000)
    return np.array([ranks[i] for i in range(n)])


graphs = st.integers(2, 25).flatmap(lambda n: st.tuples(
    st.just(n),
    st.lists(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1), st.integers(1, 5)), min_size=1, max_size=80),
    st.lists(st.integers(0, n - 1), max_size=3, unique=True),
    st.sampled_from([0.1, 0.15, 0.5]),
))


@settings(max_examples=80, deadline=None)
@given(graphs)
def test_eigentrust_is_personalized_pagerank(graph):
    n, triples, seeds, teleport = graph
    raters, ratees, stars = (np.array(column) for column in zip(*triples))
    ours = eigentrust(local_trust(raters, ratees, stars, n), pretrusted_vector(n, np.array(seeds, dtype=int)),
                      teleport, tol=1e-14)
    theirs = _networkx_pagerank(raters, ratees, stars, n, np.array(seeds, dtype=int), teleport)
    assert np.abs(ours.trust - theirs).max() < 1e-9
    assert abs(ours.trust.sum() - 1.0) < 1e-12


def test_local_trust_is_positive_minus_negative_normalized():
    # 0 rates 1: two good, one bad → +1; 0 rates 2: one good → +1; 0 rates 3: bad → 0.
    local = local_trust(np.array([0, 0, 0, 0, 0]), np.array([1, 1, 1, 2, 3]), np.array([5, 4, 1, 5, 2]), 4)
    assert local.toarray()[0].tolist() == [0.0, 0.5, 0.5, 0.0]
    assert local.toarray()[1:].sum() == 0


def test_pretrusted_seeds_pull_trust_towards_whom_they_trust():
    # 0 is the seed and trusts 1; 2 and 3 trust each other only.
    raters, ratees, stars = np.array([0, 2, 3]), np.array([1, 3, 2]), np.array([5, 5, 5])
    result = eigentrust(local_trust(raters, ratees, stars, 4), pretrusted_vector(4, np.array([0])), 0.15)
    trust = result.relative()
    assert trust[1] > 1.0 and trust[0] > trust[2] and trust[2] == pytest.approx(0.0, abs=1e-9)


def _planted(seed, honest=3000, per_rater=8, rings=(4, 5, 5, 6, 6, 7, 8, 8, 10, 12), reciprocity=0.3,
             ring_pairs=0.85):
    """A random town where honest people often return a good rating, plus planted rings.

    Ring members rate most fellow members 5 stars (each pair with probability `ring_pairs`),
    rate a few honest people, and are rated by one or two of them.
    """
    rng = np.random.default_rng(seed)
    raters = np.repeat(np.arange(honest), per_rater)
    ratees = rng.integers(0, honest, len(raters))
    stars = rng.choice([1, 2, 3, 4, 5], len(raters), p=[0.05, 0.05, 0.15, 0.35, 0.40])
    back = rng.random(len(raters)) < reciprocity
    triples = [(raters, ratees, stars), (ratees[back], raters[back], rng.choice([4, 5], int(back.sum())))]
    members = []
    start = honest
    for size in rings:
        group = np.arange(start, start + size)
        members.append(group)
        a, b = np.meshgrid(group, group)
        off = (a != b) & (rng.random(a.shape) < ring_pairs)
        triples.append((a[off], b[off], np.full(off.sum(), 5)))
        triples.append((group, rng.integers(0, honest, size), np.full(size, 5)))
        fans = rng.integers(0, honest, 2)
        triples.append((fans, rng.choice(group, 2), np.full(2, 5)))
        start += size
    columns = [np.concatenate(c) for c in zip(*triples)]
    return start, columns, set(np.concatenate(members).tolist())


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_planted_rings_are_found_with_high_precision_and_recall(seed):
    n, (raters, ratees, stars), planted = _planted(seed=seed)
    trust = eigentrust(local_trust(raters, ratees, stars, n), pretrusted_vector(n, np.arange(50)), 0.15)
    rings = find_rings(raters, ratees, stars, n, relative_trust=trust.relative())
    flagged = {m for ring in rings for m in ring.members}
    precision = len(flagged & planted) / len(flagged)
    recall = len(flagged & planted) / len(planted)
    print(f"collusion: {len(rings)} rings, precision {precision:.3f}, recall {recall:.3f}")
    assert precision >= 0.95 and recall >= 0.9
    assert all(ring.density >= 0.6 for ring in rings)


def test_honest_reciprocity_alone_is_not_a_ring():
    # Pairs who rate each other well, and a triangle that the rest of the town also rates.
    raters = np.array([0, 1, 2, 3, 4, 5, 6, 5, 4, 6] + [7, 8, 9, 10, 11] * 3)
    ratees = np.array([1, 0, 3, 2, 5, 4, 4, 6, 6, 5] + [4, 5, 6] * 5)
    stars = np.full(len(raters), 5)
    assert find_rings(raters, ratees, stars, 12) == []
