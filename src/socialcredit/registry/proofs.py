"""Tamper evidence: the tree head, inclusion and consistency proofs, `verify`.

None of these needs the pseudonym key: an outside auditor with a copy of the database can
run them all (with the key, `verify` also checks that it is the registry's own).
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import InvalidInput
from ..instants import now_us
from ..ledger import chains, merkle, subtrees
from ..ledger.verify import Anchor, DecisionChecks, LedgerFacts, Problems, check_key, verify_ledger, verify_log
from ..results import ConsistencyProof, InclusionProof, TreeHead, VerifyReport
from ..scoring.compact import CompactStanding, compact
from ..store import StandingRow, Store
from .policies import PolicyBook
from .standings import Standings

_DEEP_CHUNK = 2_000  # standings recomputed per read of their subjects' entries


class Proofs:
    def __init__(self, store: Store, policies: PolicyBook, standings: Standings):
        self._store = store
        self._policies = policies
        self._standings = standings

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

    def verify(self, progress: Callable[[int], None] | None = None, *, key_fingerprint: str | None = None,
               deep: bool = False) -> VerifyReport:
        """Recompute every leaf, checkpoint root and frontier, the key anchor, both logs' chains;
        with `deep`, every materialized standing."""
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
        standings = self._deep(facts, problems, progress) if deep else None
        return VerifyReport(
            ok=not problems.found,
            size=facts.size,
            root=facts.root.hex(),
            entries=facts.entries,
            checkpoints=facts.checkpoints,
            problems=problems.found,
            decisions=counts[chains.DECISIONS],
            audit=counts[chains.AUDIT],
            standings=standings,
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

    def _deep(self, facts: LedgerFacts, problems: Problems, progress: Callable[[int], None] | None) -> int:
        """Recompute every materialized standing with the engine, from its subject's entries."""
        count = 0
        chunk: list[StandingRow] = []
        for row in self._store.standings.rows():
            chunk.append(row)
            if len(chunk) == _DEEP_CHUNK:
                count += self._recompute(chunk, facts, problems, progress)
                chunk = []
        return count + self._recompute(chunk, facts, problems, progress)

    def _recompute(self, rows: list[StandingRow], facts: LedgerFacts, problems: Problems,
                   progress: Callable[[int], None] | None) -> int:
        histories = self._store.ledger.entries_for_subjects([row.subject for row in rows])
        for row in rows:
            difference = self._difference(row, histories.get(row.subject, []), facts.size)
            if difference is not None:
                problems("standing", None, f"the materialized standing of {row.subject} {difference}",
                         subject=row.subject)
        if progress is not None:
            progress(len(rows))
        return len(rows)

    def _difference(self, row: StandingRow, entries: list, ledger_size: int) -> str | None:
        """What is wrong with a stored standing, in words, or None if it is the fold's."""
        policy = self._policies.by_digest(row.policy_digest)
        if policy is None:
            return f"names policy {row.policy_digest}, which the ledger never activated"
        try:
            stored = CompactStanding.from_json(row.body, row.cacheable)
        except (ValueError, KeyError, TypeError):
            return "is not a standing the registry writes (its body does not read)"
        columns = {"policy_digest": row.policy_digest, "score": row.score, "tier": row.tier,
                   "valid_from_us": row.valid_from_us, "valid_until_us": row.valid_until_us}
        disagree = [name for name, value in columns.items() if getattr(stored, name) != value]
        if disagree:
            return f"has columns that disagree with its body ({', '.join(disagree)})"
        last = entries[-1].seq if entries else -1
        if not last < row.known_size <= ledger_size:
            return (f"says it holds at ledger size {row.known_size}, but its subject's last entry is #{last} and the "
                    f"ledger's size {ledger_size}")
        # It holds throughout [valid_from, valid_until): fold at an instant inside it.
        if stored.valid_from_us is not None:
            at = stored.valid_from_us
        else:
            at = stored.valid_until_us - 1 if stored.valid_until_us is not None else now_us()
        folded = compact(self._standings.engine.standing(policy, entries, at, None, row.subject))
        if not row.cacheable:
            # A decaying standing held only at the instant it was folded, which is not stored;
            # checks never use one, so all that matters is that it is one.
            return None if not folded.cacheable else "is marked as decaying, but the fold's does not decay"
        if folded == stored:
            return None
        differ = [name for name in stored.__dataclass_fields__ if getattr(stored, name) != getattr(folded, name)]
        return f"differs from the fold of its entries ({', '.join(differ)})"

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
