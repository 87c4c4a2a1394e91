"""Tamper evidence: the tree head, inclusion and consistency proofs, and `verify`.

None of these needs the pseudonym key: an outside auditor with a copy of the database can
run them all.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InvalidInput
from ..ledger import merkle, subtrees
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
        """An RFC 9162 inclusion proof, from a few stored subtree nodes (O(log n) reads)."""
        size = self._size_or_current(size)
        if not 0 <= seq < size:
            raise InvalidInput(f"entry #{seq} is not in a ledger of size {size}")
        with self._store.ledger.tree_reader() as reader:
            tree = subtrees.StoredTree(reader, size)
            proof = tree.inclusion_proof(seq)
            return InclusionProof(seq, size, tree.leaf(seq).hex(), _root_at(reader, tree, size).hex(),
                                  [h.hex() for h in proof])

    def consistency(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        """An RFC 9162 consistency proof between two tree sizes, from stored subtree nodes."""
        new_size = self._size_or_current(new_size)
        if not 0 <= old_size <= new_size:
            raise InvalidInput(f"old size {old_size} must be between 0 and {new_size}")
        with self._store.ledger.tree_reader() as reader:
            tree = subtrees.StoredTree(reader, new_size)
            proof = tree.consistency_proof(old_size)
            return ConsistencyProof(old_size, new_size, _root_at(reader, tree, old_size).hex(),
                                    _root_at(reader, tree, new_size).hex(), [h.hex() for h in proof])

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Recompute every leaf and every checkpoint root from the stored entries."""
        checkpoints = {c.size: c.root for c in self._store.ledger.checkpoints()}
        return verify_ledger(self._store.ledger.iter_rows(), checkpoints, self._stored_nodes, progress)

    def _stored_nodes(self, level: int, start: int, end: int) -> list[tuple[int, bytes]]:
        with self._store.ledger.tree_reader() as reader:
            return reader.node_rows(level, start, end)

    def _size_or_current(self, size: int | None) -> int:
        current = self._store.ledger.size()
        if size is None:
            return current
        if not 0 < size <= current:
            raise InvalidInput(f"known-at size must be between 1 and the ledger size {current}, got {size}")
        return size


def _root_at(reader, tree: subtrees.StoredTree, size: int) -> bytes:
    """The ledger's root at `size`: its checkpoint's (every append stores one), else from the stored tree."""
    return reader.checkpoint_root(size) or tree.root(size)
