"""Tamper evidence: the tree head, inclusion and consistency proofs, `verify`.

None of these needs the pseudonym key: an outside auditor with a copy of the database can
run them all (with the key, `verify` also checks that it is the registry's own).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InvalidInput
from ..ledger import chains, merkle, subtrees
from ..ledger.verify import Anchor, DecisionChecks, Problems, check_key, verify_ledger, verify_log
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

    # -- verify ----------------------------------------------------------------------------

    def verify(self, progress: Callable[[int], None] | None = None, *,
               key_fingerprint: str | None = None) -> VerifyReport:
        """Recompute every leaf, checkpoint root and frontier, the key anchor and both logs' chains."""
        problems = Problems()
        checkpoints = {c.size: c for c in self._store.ledger.checkpoints()}
        facts = verify_ledger(self._store.ledger.iter_rows(), checkpoints, self._stored_nodes, problems, progress)
        check_key(facts, self._store.meta.all().get("key_fingerprint"), key_fingerprint, problems)
        anchors = self._anchors()
        logs = {chains.DECISIONS: self._store.decisions, chains.AUDIT: self._store.audit}
        counts = {}
        for log, table in logs.items():
            counts[log] = verify_log(log, table.chained(), anchors[log], problems, head=self._head(log),
                                     head_later=lambda log=log: self._head(log),
                                     checks=DecisionChecks(facts, self._later) if log == chains.DECISIONS else None,
                                     progress=progress)
        return VerifyReport(
            ok=not problems.found,
            size=facts.size,
            root=facts.root.hex(),
            entries=facts.entries,
            checkpoints=facts.checkpoints,
            problems=problems.found,
            decisions=counts[chains.DECISIONS],
            audit=counts[chains.AUDIT],
        )

    def _head(self, log: str) -> Anchor | None:
        head = self._store.log_heads.all().get(log)
        return None if head is None else Anchor(*head, "in log_heads")

    def _anchors(self) -> dict[str, list[Anchor]]:
        """The heads the checkpoints recorded for each log."""
        anchors: dict[str, list[Anchor]] = {log: [] for log in chains.LOGS}
        for at in self._store.ledger.log_heads_at_checkpoints():
            for log, head in ((chains.DECISIONS, at.decisions), (chains.AUDIT, at.audit)):
                if head is not None:
                    anchors[log].append(Anchor(*head, f"in the checkpoint of ledger size {at.size}", at.size))
        return anchors

    def _later(self) -> tuple[int, set[str]]:
        """The ledger's size now and every policy it activated: for decisions made while verify ran."""
        return self._store.ledger.size(), {a.digest for a in self._store.ledger.policy_activations()}

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
