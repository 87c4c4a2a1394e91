"""EigenTrust on a random rating graph against networkx.pagerank, on the same data.

The project's figure is the whole run: from rating triples (rater, ratee, stars) to the
local-trust matrix on scipy.sparse, then power iteration to convergence. The anchor is
networkx.pagerank with the same personalization and dangling distribution (EigenTrust is
personalized PageRank). At full size networkx would need many gigabytes and minutes to build
its graph of 10,000,000 edges, so it runs on a sample: a graph drawn the same way with a
tenth of the subjects and a tenth of the ratings (the same density), and its time is scaled
up by edges; the JSON says so. Both sides run on the sample and the largest difference of
their trust values is printed.

    python bench/bench_trust.py            # 1,000,000 subjects, 10,000,000 ratings
    python bench/bench_trust.py --quick    # 20,000 subjects, 200,000 ratings
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from _common import emit, note
from socialcredit.ratings.trust import eigentrust, local_trust, pretrusted_vector

TELEPORT = 0.15
TOL = 1e-10


def random_ratings(subjects: int, ratings: int, rng: np.random.Generator):
    """A random graph with a skewed in-degree (some people are rated far more than others)."""
    raters = rng.integers(0, subjects, ratings, dtype=np.int64)
    popularity = rng.zipf(1.8, ratings) % subjects
    ratees = (popularity * 7919 + rng.integers(0, 97, ratings)) % subjects
    stars = rng.choice(np.array([1, 2, 3, 4, 5], dtype=np.int8), ratings, p=[0.05, 0.07, 0.13, 0.35, 0.40])
    return raters, ratees, stars


def ours(raters, ratees, stars, n, seeds) -> tuple[float, np.ndarray, int]:
    started = time.perf_counter()
    result = eigentrust(local_trust(raters, ratees, stars, n), pretrusted_vector(n, seeds), TELEPORT, tol=TOL)
    return time.perf_counter() - started, result.trust, result.iterations


def networkx_anchor(raters, ratees, stars, n, seeds) -> tuple[float, np.ndarray]:
    import networkx as nx

    started = time.perf_counter()
    local = local_trust(raters, ratees, stars, n).tocoo()
    graph = nx.DiGraph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from(zip(local.row.tolist(), local.col.tolist(), local.data.tolist()))
    p = pretrusted_vector(n, seeds)
    personalization = dict(enumerate(p.tolist()))
    ranks = nx.pagerank(graph, alpha=1 - TELEPORT, personalization=personalization, dangling=personalization,
                        tol=TOL / n, max_iter=1000)
    seconds = time.perf_counter() - started
    return seconds, np.array([ranks[i] for i in range(n)])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--subjects", type=int, help="default 1,000,000")
    parser.add_argument("--ratings", type=int, help="default 10,000,000")
    parser.add_argument("--sample", type=int, help="subjects in the networkx sample (default 100,000)")
    args = parser.parse_args(argv)
    subjects = args.subjects or (20_000 if args.quick else 1_000_000)
    ratings = args.ratings or (200_000 if args.quick else 10_000_000)
    sample_size = min(args.sample or (5_000 if args.quick else 100_000), subjects)
    rng = np.random.default_rng(args.seed)
    raters, ratees, stars = random_ratings(subjects, ratings, rng)
    seeds = rng.choice(subjects, 100, replace=False)
    note(f"EigenTrust on {subjects:,} subjects and {ratings:,} ratings")
    seconds, trust, iterations = ours(raters, ratees, stars, subjects, seeds)
    note(f"done in {seconds:.2f} s ({iterations} iterations); networkx on a {sample_size:,}-subject sample")
    s_raters, s_ratees, s_stars = random_ratings(sample_size, ratings * sample_size // subjects, rng)
    s_seeds = np.arange(min(100, sample_size))
    ours_sample_seconds, ours_sample, _ = ours(s_raters, s_ratees, s_stars, sample_size, s_seeds)
    anchor_seconds, theirs = networkx_anchor(s_raters, s_ratees, s_stars, sample_size, s_seeds)
    scale = ratings / max(len(s_raters), 1)
    report = {
        "bench": "trust",
        "subjects": subjects,
        "ratings": ratings,
        "iterations": iterations,
        "seconds": round(seconds, 3),
        "networkx_sample_subjects": sample_size,
        "networkx_sample_ratings": int(len(s_raters)),
        "networkx_sample_seconds": round(anchor_seconds, 3),
        "ours_sample_seconds": round(ours_sample_seconds, 4),
        "networkx_scaled_seconds": round(anchor_seconds * scale, 1),
        "scaled_by": "edges",
        "ratio": round(anchor_seconds * scale / seconds, 1),
        "max_difference_on_sample": float(np.abs(ours_sample - theirs).max()),
        "goal_seconds": 5.0,
        "meets_goal": seconds < 5.0,
        "quick": args.quick,
        "seed": args.seed,
    }
    return emit(report)


if __name__ == "__main__":
    main()
