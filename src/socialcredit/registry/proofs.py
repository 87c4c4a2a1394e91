"""Tamper evidence: the tree head, inclusion and consistency proofs, and `verify`.

None of these needs the pseudonym key: an outside auditor with a copy of the database can
run them all.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InvalidInput, Tampered
from ..ledger import merkle
from ..ledger.verify import verify_ledger
from ..results import ConsistencyProof, InclusionProof, TreeHead, VerifyReport
from ..store import Store


class Proofs:
    def __init__(self, store: Store):
        self._store = store

    def root(self) -> TreeHead:
        checkpoint = self._store.ledger.last_checkpoint()
        if checkpoint is None:
            return TreeHead(0, merkle.EMPTY_ROOT.hex())
        return TreeHead(checkpoint.size, checkpoint.root.hex())

    def inclusion(self, seq: int, size: int | None = None) -> InclusionProof:
        size = self._size_or_current(size)
        if not 0 <= seq < size:
            raise InvalidInput(f"entry #{seq} is not in a ledger of size {size}")
        leaves = self._leaves(size)
        return InclusionProof(seq, size, leaves[seq].hex(), merkle.root(leaves).hex(),
                              [h.hex() for h in merkle.inclusion_proof(leaves, seq)])

    def consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        new_size = self._size_or_current(new_size)
        if not 0 <= old_size <= new_size:
            raise InvalidInput(f"old size {old_size} must be between 0 and {new_size}")
        leaves = self._leaves(new_size)
        return ConsistencyProof(old_size, new_size, merkle.root(leaves[:old_size]).hex(), merkle.root(leaves).hex(),
                                [h.hex() for h in merkle.consistency_proof(leaves, old_size)])

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Recompute every leaf and every checkpoint root from the stored entries."""
        checkpoints = {c.size: c.root for c in self._store.ledger.checkpoints()}
        return verify_ledger(self._store.ledger.iter_rows(), checkpoints, progress)

    def _size_or_current(self, size: int | None) -> int:
        current = self._store.ledger.size()
        if size is None:
            return current
        if not 0 < size <= current:
            raise InvalidInput(f"known-at size must be between 1 and the ledger size {current}, got {size}")
        return size

    def _leaves(self, size: int) -> list[bytes]:
        leaves = self._store.ledger.leaf_hashes(size)
        if len(leaves) != size:
            raise Tampered(f"the ledger holds {len(leaves)} entries below size {size}: entries are missing; "
                           "run `socialcredit verify`")
        return leaves
