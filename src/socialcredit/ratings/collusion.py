"""Rating rings: groups that rate each other highly and are rated by few outside the group.

1. Keep mutual positive pairs (i gave j 4+ stars and j gave i 4+ stars).
2. Take the 2-core of that graph: a member of a ring of three or more has at least two
   mutual partners, while the chance mutual pairs of honest subjects fall away.
3. Each connected group of the core is flagged when it is dense (mutual pairs ≥ `density`
   of all possible pairs) and inward-looking: its members' positive ratings from inside the
   group outnumber those from outside by `insularity` (1.5) to one or more, and its average
   global trust (EigenTrust) is below the average subject's, when trust is given.

A flag is a pointer for a human reviewer, not a verdict; the policy decides what it does
(e.g. a `peer.collusion_flag` event that puts members on a list whose raters weigh less).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class Ring:
    members: tuple[int, ...]
    density: float  # mutual positive pairs / possible pairs
    inside: int  # positive ratings members gave each other
    outside: int  # positive ratings members received from non-members
    mean_trust: float | None  # relative EigenTrust (1.0 = average), if given

    def evidence(self) -> str:
        trust = "" if self.mean_trust is None else f", mean trust {self.mean_trust:.2f} of average"
        return (f"{len(self.members)} subjects rate each other highly ({self.density:.0%} of pairs mutual, "
                f"{self.inside} ratings inside) but get {self.outside} positive ratings from outside{trust}")


def find_rings(raters: np.ndarray, ratees: np.ndarray, stars: np.ndarray, n: int, *,
               relative_trust: np.ndarray | None = None, positive_from: int = 4, density: float = 0.6,
               insularity: float = 1.5, min_size: int = 3) -> list[Ring]:
    raters = np.asarray(raters, dtype=np.int64)
    ratees = np.asarray(ratees, dtype=np.int64)
    positive = (np.asarray(stars) >= positive_from) & (raters != ratees)
    given = sparse.csr_matrix((np.ones(int(positive.sum())), (raters[positive], ratees[positive])), shape=(n, n))
    given.data[:] = 1.0  # a pair counts once however often it was rated
    mutual = given.multiply(given.T).tocsr()
    core = _two_core(mutual)
    if not core.any():
        return []
    count, labels = connected_components(mutual[core][:, core], directed=False)
    core_nodes = np.flatnonzero(core)
    positives = sparse.csr_matrix((np.ones(int(positive.sum())), (raters[positive], ratees[positive])), shape=(n, n))
    rings = []
    for label in range(count):
        members = core_nodes[labels == label]
        k = len(members)
        if k < min_size:
            continue
        inner = mutual[members][:, members]
        pair_density = (inner.nnz / 2) / (k * (k - 1) / 2)
        received = positives[:, members]
        inside = int(received[members].sum())
        outside = int(received.sum()) - inside
        mean_trust = float(relative_trust[members].mean()) if relative_trust is not None else None
        if pair_density < density or inside < insularity * max(outside, 1):
            continue
        if mean_trust is not None and mean_trust >= 1.0:
            continue
        rings.append(Ring(tuple(int(m) for m in members), pair_density, inside, outside, mean_trust))
    return rings


def _two_core(mutual: sparse.csr_matrix) -> np.ndarray:
    """Nodes left after repeatedly removing those with fewer than two mutual partners."""
    alive = np.ones(mutual.shape[0], dtype=bool)
    degree = np.diff(mutual.indptr).astype(np.int64)
    while True:
        drop = alive & (degree < 2)
        if not drop.any():
            return alive
        alive &= ~drop
        # Each dropped node lowers its neighbours' degree by one.
        lost = np.asarray(mutual[drop].sum(axis=0)).ravel().astype(np.int64)
        degree -= lost
