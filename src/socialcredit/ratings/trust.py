"""Global trust over the rating graph: EigenTrust (Kamvar, Schlosser, Garcia-Molina, 2003).

Local trust of i in j is s_ij = max(0, positive − negative ratings i gave j), normalized per
rater: c_ij = s_ij / Σ_k s_ik. Global trust is the fixed point of

    t = (1 − a) · (Cᵀ t + p · Σ_{dangling i} t_i) + a · p

where p is the pre-trusted distribution (the policy's seed subjects, or everyone alike) and
a the teleport share: raters who trust nobody hand their trust to the seeds. That is
personalized PageRank with damping 1 − a, personalization p and dangling distribution p,
which is how the tests check it against networkx.

Results are reported as relative trust, n · t_i: 1.0 is the average subject.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass
class TrustResult:
    trust: np.ndarray  # sums to 1
    iterations: int
    residual: float  # L1 change in the last iteration

    def relative(self) -> np.ndarray:
        return self.trust * len(self.trust)


def local_trust(raters: np.ndarray, ratees: np.ndarray, stars: np.ndarray, n: int,
                negative_at_most: int = 2) -> sparse.csr_matrix:
    """Row-normalized local trust C (n × n) from rating triples (indices 0..n-1)."""
    raters = np.asarray(raters, dtype=np.int64)
    ratees = np.asarray(ratees, dtype=np.int64)
    keep = raters != ratees
    signs = np.where(np.asarray(stars)[keep] > negative_at_most, 1.0, -1.0)
    satisfaction = sparse.csr_matrix((signs, (raters[keep], ratees[keep])), shape=(n, n))  # sums duplicates
    satisfaction.data = np.maximum(satisfaction.data, 0.0)
    satisfaction.eliminate_zeros()
    row_sums = np.asarray(satisfaction.sum(axis=1)).ravel()
    scale = np.divide(1.0, row_sums, out=np.zeros_like(row_sums), where=row_sums > 0)
    return sparse.diags(scale) @ satisfaction


def pretrusted_vector(n: int, seeds: np.ndarray | None = None) -> np.ndarray:
    if seeds is None or len(seeds) == 0:
        return np.full(n, 1.0 / n)
    p = np.zeros(n)
    p[np.asarray(seeds, dtype=np.int64)] = 1.0 / len(seeds)
    return p


def eigentrust(local: sparse.csr_matrix, pretrusted: np.ndarray, teleport: float = 0.15, tol: float = 1e-10,
               max_iterations: int = 1000, progress: Callable[[int, float], None] | None = None) -> TrustResult:
    """Power iteration to an L1 change below `tol`."""
    transposed = local.T.tocsr()
    dangling = np.asarray(local.sum(axis=1)).ravel() == 0
    p = pretrusted / pretrusted.sum()
    t = p.copy()
    residual = float("inf")
    for iteration in range(1, max_iterations + 1):
        spread = transposed @ t + p * t[dangling].sum()
        new = (1.0 - teleport) * spread + teleport * p
        new /= new.sum()  # guards against drift; the iteration preserves the sum exactly in theory
        residual = float(np.abs(new - t).sum())
        t = new
        if progress is not None:
            progress(iteration, residual)
        if residual < tol:
            return TrustResult(t, iteration, residual)
    return TrustResult(t, max_iterations, residual)


def index_subjects(raters: list[str], ratees: list[str]) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Pseudonyms to dense indices: (subjects, rater indices, ratee indices)."""
    subjects = sorted(set(raters) | set(ratees))
    position = {s: i for i, s in enumerate(subjects)}
    return (subjects, np.fromiter((position[r] for r in raters), np.int64, len(raters)),
            np.fromiter((position[r] for r in ratees), np.int64, len(ratees)))
