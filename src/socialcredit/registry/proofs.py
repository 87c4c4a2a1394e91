"""Tamper evidence: the tree head, inclusion and consistency proofs, `verify`, published tree heads.

None of these needs the pseudonym key: an outside auditor with a copy of the database can
run them all (with the key, `verify` also checks that it is the registry's own).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import replace

from ..errors import InvalidInput, Tampered
from ..instants import format_instant, now_us
from ..ledger import chains, merkle, subtrees
from ..ledger.verify import (Anchor, DecisionChecks, LedgerFacts, Problems, check_key, check_published,
                             verify_ledger, verify_log)
from ..results import ConsistencyProof, InclusionProof, LogHead, PublishedHead, TreeHead, VerifyReport
from ..scoring.compact import CompactStanding, compact
from ..store import StandingRow, Store
from .policies import PolicyBook, snapshot_problems
from .standings import Standings

PUBLISHED_FORMAT = "socialcredit-tree-head/1"
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

    def publish(self, by: str | None) -> PublishedHead:
        """The tree head and the logs' heads now, to publish where the operator cannot change it later."""
        with self._store.db.read() as tx:
            checkpoint = self._store.ledger.last_checkpoint(tx)
            heads = self._store.log_heads.all(tx)
        size, root = (checkpoint.size, checkpoint.root) if checkpoint else (0, merkle.EMPTY_ROOT)
        logs = {log: LogHead(heads[log][0], heads[log][1].hex()) if log in heads else None for log in chains.LOGS}
        return PublishedHead(PUBLISHED_FORMAT, size, root.hex(), logs[chains.DECISIONS], logs[chains.AUDIT],
                             format_instant(now_us()), by)

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
               deep: bool = False, against: PublishedHead | None = None) -> VerifyReport:
        """Recompute every leaf, checkpoint root and frontier, the key anchor, both logs' chains;
        with `deep`, every materialized standing; with `against`, prove the ledger extends it."""
        problems = Problems()
        checkpoints = {c.size: c for c in self._store.ledger.checkpoints()}
        facts = verify_ledger(self._store.ledger.iter_rows(), checkpoints, self._stored_nodes, problems, progress)
        check_key(facts, self._store.meta.all().get("key_fingerprint"), key_fingerprint, problems)
        if against is not None:
            check_published(against.size, bytes.fromhex(against.root), facts, self._proof(against.size, facts.size),
                            problems)
        anchors = self._anchors(against)
        logs = {chains.DECISIONS: self._store.decisions, chains.AUDIT: self._store.audit}
        counts = {}
        for log, table in logs.items():
            counts[log] = verify_log(log, table.chained(), anchors[log], problems, head=self._head(log),
                                     head_later=lambda log=log: self._head(log),
                                     checks=DecisionChecks(facts, self._later) if log == chains.DECISIONS else None,
                                     progress=progress)
        for entry, problem in snapshot_problems(self._store):
            problems("policy_snapshot", entry, problem)
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
            against=None if against is None else against.size,
        )

    def _head(self, log: str) -> Anchor | None:
        head = self._store.log_heads.all().get(log)
        return None if head is None else Anchor(*head, "in log_heads")

    def _anchors(self, against: PublishedHead | None) -> dict[str, list[Anchor]]:
        """The heads the checkpoints recorded for each log, and those of the published tree head."""
        anchors: dict[str, list[Anchor]] = {log: [] for log in chains.LOGS}
        for at in self._store.ledger.log_heads_at_checkpoints():
            for log, head in ((chains.DECISIONS, at.decisions), (chains.AUDIT, at.audit)):
                if head is not None:
                    anchors[log].append(Anchor(*head, f"in the checkpoint of ledger size {at.size}", at.size))
        if against is not None:
            for log, head in ((chains.DECISIONS, against.decisions), (chains.AUDIT, against.audit)):
                if head is not None:
                    anchors[log].append(Anchor(head.count, bytes.fromhex(head.head), "in the published tree head"))
        return anchors

    def _later(self) -> tuple[int, set[str]]:
        """The ledger's size now and every policy it activated: for decisions made while verify ran."""
        return self._store.ledger.size(), {a.digest for a in self._store.ledger.policy_activations()}

    def _proof(self, old_size: int, new_size: int) -> list[bytes] | str:
        """The consistency proof from `old_size` to `new_size`, or why there is none."""
        if old_size > new_size or new_size == 0:
            return []
        try:
            with self._store.ledger.tree_reader() as reader:
                return subtrees.StoredTree(reader, new_size).consistency_proof(old_size)
        except Tampered as exc:
            return str(exc)

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
        standing = self._standings.engine.standing(policy, entries, at, None, row.subject)
        folded = compact(standing)
        if not row.cacheable:
            # A decaying standing held only at the instant it was folded, which is not stored;
            # checks never use one, so all that matters is that it is one.
            return None if not folded.cacheable else "is marked as decaying, but the fold's does not decay"
        if folded == stored:
            return None
        if stored.reasons == standing.reasons and replace(stored, reasons=folded.reasons) == folded:
            return None  # written before stored standings were lean: every record a reason, else the same
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


def parse_published(text: str) -> PublishedHead:
    """A tree head to verify against: a document of `root --publish` (or `root --json`), or SIZE:ROOT."""
    text = text.strip()
    short = re.fullmatch(r"(\d+):([0-9a-fA-F]{64})", text)
    if short:
        return PublishedHead(PUBLISHED_FORMAT, int(short[1]), short[2].lower())
    try:
        data = json.loads(text)
    except ValueError:
        raise InvalidInput("--against takes a file written by `socialcredit root --publish` (or `root --json`), "
                           f"or SIZE:ROOT (a size, a colon and 64 hex digits); got {_shown(text)}") from None
    if not isinstance(data, dict):
        raise InvalidInput("a published tree head is a JSON object with size and root")
    size, root = data.get("size"), data.get("root")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0 or not _is_hash(root):
        raise InvalidInput("a published tree head needs size (a whole number) and root (64 hex digits)")
    logs = {}
    for log in chains.LOGS:
        head = data.get(log)
        if head is None:
            logs[log] = None
        elif (isinstance(head, dict) and isinstance(head.get("count"), int) and not isinstance(head["count"], bool)
              and head["count"] >= 0 and _is_hash(head.get("head"))):
            logs[log] = LogHead(head["count"], head["head"].lower())
        else:
            raise InvalidInput(f"the published tree head's {log} must be {{\"count\": N, \"head\": 64 hex digits}}")
    if data.get("format", PUBLISHED_FORMAT) != PUBLISHED_FORMAT:
        raise InvalidInput(f"a published tree head of format {_shown(str(data['format']))} is not one this version "
                           f"reads ({PUBLISHED_FORMAT})")
    return PublishedHead(PUBLISHED_FORMAT, size, root.lower(), logs[chains.DECISIONS],
                         logs[chains.AUDIT], data.get("published_at"), data.get("published_by"))


def _is_hash(value) -> bool:
    return isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{64}", value) is not None


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "…")


def _root_at(reader, tree: subtrees.StoredTree, size: int) -> bytes:
    """The ledger's root at `size`: its checkpoint's (every append stores one), else from the stored tree."""
    return reader.checkpoint_root(size) or tree.root(size)
