"""The ledger's tables: entries (append-only) and checkpoints (each append's tree head, and the
logs' heads at that moment).

Plain SQL over a `Database`; rows come back as `Entry` values or named row types. Nothing
here knows what a rule, a rating or a void means: it stores and finds entries.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import NamedTuple

from ..ledger.chains import AUDIT, DECISIONS
from ..ledger.entries import EVENT, POLICY, VOID, Entry
from .database import Database, Tx

_CHUNK = 500  # values per IN (...) list: well under every driver's parameter limit
_ENTRY_COLUMNS = "seq, kind, recorded_us, subject, type, occurred_us, provider, key, body"


class Checkpoint(NamedTuple):
    size: int
    root: bytes
    frontier: list[str]  # the hex roots of the complete subtrees the size decomposes into
    recorded_us: int


class LogHeadsAt(NamedTuple):
    """The logs' heads a checkpoint recorded (None in checkpoints from before migration 0005)."""

    size: int  # the checkpoint's
    decisions: tuple[int, bytes] | None
    audit: tuple[int, bytes] | None


class EntryRow(NamedTuple):
    """An entry as stored: its indexed columns, canonical body and leaf hash."""

    seq: int
    kind: str
    recorded_us: int
    provider: str | None
    key: str | None
    subject: str | None
    type: str | None
    occurred_us: int | None
    body: str
    leaf_hash: bytes
    actor: str | None


class PolicyActivation(NamedTuple):
    seq: int
    recorded_us: int
    digest: str
    body: dict  # id, version, digest, text (and, when forced past lint errors, why)


def entry_row(entry: Entry, body: str, leaf_hash: bytes, actor: str | None = None) -> EntryRow:
    return EntryRow(entry.seq, entry.kind, entry.recorded_us, entry.provider, entry.key, entry.subject, entry.type,
                    entry.occurred_us, body, leaf_hash, actor)


class LedgerTables:
    def __init__(self, db: Database):
        self.db = db

    # -- the tree head ----------------------------------------------------------------------

    def last_checkpoint(self, tx: Tx | None = None) -> Checkpoint | None:
        with self.db.reading(tx) as t:
            row = t.one("SELECT size, root, frontier, recorded_us FROM checkpoints ORDER BY size DESC LIMIT 1")
        return None if row is None else _checkpoint(row)

    def checkpoint(self, size: int) -> Checkpoint | None:
        with self.db.read() as t:
            row = t.one("SELECT size, root, frontier, recorded_us FROM checkpoints WHERE size = ?", (size,))
        return None if row is None else _checkpoint(row)

    def checkpoints(self) -> list[Checkpoint]:
        with self.db.read() as t:
            return [_checkpoint(r) for r in t.all("SELECT size, root, frontier, recorded_us FROM checkpoints "
                                                  "ORDER BY size")]

    def size(self, tx: Tx | None = None) -> int:
        checkpoint = self.last_checkpoint(tx)
        return checkpoint.size if checkpoint else 0

    # -- appending ----------------------------------------------------------------------------

    def append(self, tx: Tx, rows: Sequence[EntryRow], checkpoint: Checkpoint,
               nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Insert entry rows, the subtree nodes (level, index, hash) they complete
        (`ledger.subtrees.append_leaves`) and the checkpoint that covers them, in the caller's
        transaction. `nodes` is required, so no append can leave the stored tree behind.

        The checkpoint also records the logs' heads as they are now, so that rewriting a log
        means rewriting every checkpoint written since as well."""
        self.append_rows(tx, rows, nodes)
        self.append_checkpoint(tx, checkpoint)

    def append_rows(self, tx: Tx, rows: Sequence[EntryRow], nodes: Sequence[tuple[int, int, bytes]]) -> None:
        """Entry rows and the subtree nodes they complete, without a checkpoint yet: a batch
        streamed in chunks writes its checkpoint once, at the end, in the same transaction."""
        tx.executemany("INSERT INTO entries (seq, kind, recorded_us, provider, key, subject, type, occurred_us, "
                       "body, leaf_hash, actor) VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        tx.executemany("INSERT INTO merkle_nodes (level, idx, hash) VALUES (?,?,?)", nodes)

    def append_checkpoint(self, tx: Tx, checkpoint: Checkpoint) -> None:
        """The checkpoint covering the rows appended so far, with the logs' heads as they are now."""
        heads = {log: (size, bytes(head)) for log, size, head in tx.all("SELECT log, size, head FROM log_heads")}
        decisions, audit = heads.get(DECISIONS, (None, None)), heads.get(AUDIT, (None, None))
        tx.execute("INSERT INTO checkpoints (size, root, frontier, recorded_us, decisions_size, decisions_head, "
                   "audit_size, audit_head) VALUES (?,?,?,?,?,?,?,?)",
                   (checkpoint.size, checkpoint.root, json.dumps(checkpoint.frontier), checkpoint.recorded_us,
                    *decisions, *audit))

    def log_heads_at_checkpoints(self) -> list[LogHeadsAt]:
        """The logs' heads each checkpoint recorded, by size (checkpoints from before 0005 recorded none)."""
        with self.db.read() as t:
            rows = t.all("SELECT size, decisions_size, decisions_head, audit_size, audit_head FROM checkpoints "
                         "WHERE decisions_size IS NOT NULL OR audit_size IS NOT NULL ORDER BY size")
        return [LogHeadsAt(size, _head(d_size, d_head), _head(a_size, a_head))
                for size, d_size, d_head, a_size, a_head in rows]

    def existing_events(self, tx: Tx, keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, str]]:
        """(provider, key) → (seq, body) for the keys already in the ledger."""
        found: dict[tuple[str, str], tuple[int, str]] = {}
        by_provider: dict[str, list[str]] = {}
        for provider, key in keys:
            by_provider.setdefault(provider, []).append(key)
        for provider, provider_keys in by_provider.items():
            if tx.one("SELECT 1 FROM entries WHERE provider = ? LIMIT 1", (provider,)) is None:
                continue  # a provider's first batch: nothing to look up key by key
            for chunk in _chunks(provider_keys):
                rows = tx.all(f"SELECT key, seq, body FROM entries WHERE provider = ? AND key IN ({tx.marks(len(chunk))})",
                              [provider, *chunk])
                for key, seq, body in rows:
                    found[(provider, key)] = (seq, body)
        return found

    # -- reading entries ----------------------------------------------------------------------

    def entries_for_subjects(self, subjects: Iterable[str], tx: Tx | None = None,
                             before: int | None = None, since: int | None = None) -> dict[str, list[Entry]]:
        """Every entry about each subject (events and the voids that name it), in seq order;
        with `before`/`since`, those with seq < before / seq >= since."""
        result: dict[str, list[Entry]] = {}
        with self.db.reading(tx) as t:
            for chunk in _chunks(list(subjects)):
                query = f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE subject IN ({t.marks(len(chunk))})"
                params: list = list(chunk)
                if before is not None:
                    query += " AND seq < ?"
                    params.append(before)
                if since is not None:
                    query += " AND seq >= ?"
                    params.append(since)
                for row in t.all(query + " ORDER BY seq", params):
                    entry = row_entry(row)
                    result.setdefault(entry.subject, []).append(entry)
        return result

    def subjects_known_before(self, subjects: Iterable[str], before: int, tx: Tx | None = None) -> set[str]:
        """The subjects among `subjects` with an entry before seq `before` (one index probe each)."""
        found: set[str] = set()
        with self.db.reading(tx) as t:
            for chunk in _chunks(list(subjects)):
                found.update(row[0] for row in t.all(
                    f"SELECT DISTINCT subject FROM entries WHERE subject IN ({t.marks(len(chunk))}) AND seq < ?",
                    [*chunk, before]))
        return found

    def entries_for_subject(self, subject: str, tx: Tx | None = None) -> list[Entry]:
        return self.entries_for_subjects([subject], tx).get(subject, [])

    def entries_by_actor(self, actor: str, event_type: str, tx: Tx | None = None) -> list[Entry]:
        """The events of a type an actor (a rater) caused, and the voids that name the actor."""
        with self.db.reading(tx) as t:
            rows = t.all(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE actor = ? AND (type = ? OR kind = ?) ORDER BY seq",
                         (actor, event_type, VOID))
        return [row_entry(row) for row in rows]

    def entry(self, seq: int, tx: Tx | None = None) -> Entry | None:
        with self.db.reading(tx) as t:
            row = t.one(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE seq = ?", (seq,))
        return None if row is None else row_entry(row)

    def policy_activations(self, after_seq: int = -1) -> list[PolicyActivation]:
        """Every policy activation after `after_seq`, oldest first (a partial index finds them)."""
        with self.db.read() as t:
            rows = t.all("SELECT seq, recorded_us, body FROM entries WHERE kind = ? AND seq > ? ORDER BY seq",
                         (POLICY, after_seq))
        activations = []
        for seq, recorded_us, body in rows:
            policy = json.loads(body)["policy"]
            activations.append(PolicyActivation(seq, recorded_us, policy["digest"], policy))
        return activations

    def rows_of_type(self, event_type: str) -> list[tuple[int, str, str | None, str]]:
        """(seq, subject, actor, body) of every event of a type, in ledger order."""
        with self.db.read() as t:
            return t.all("SELECT seq, subject, actor, body FROM entries WHERE type = ? ORDER BY seq", (event_type,))

    def void_targets(self) -> set[int]:
        """The entries cancelled by a void."""
        with self.db.read() as t:
            return {json.loads(body)["target"] for (body,) in t.all("SELECT body FROM entries WHERE kind = ?", (VOID,))}

    def iter_rows(self, batch: int = 20_000) -> Iterator[EntryRow]:
        """Every stored entry in seq order, streamed a batch at a time."""
        last = -1
        while True:
            with self.db.read() as t:
                rows = t.all("SELECT seq, kind, recorded_us, provider, key, subject, type, occurred_us, body, "
                             "leaf_hash, actor FROM entries WHERE seq > ? ORDER BY seq LIMIT ?", (last, batch))
            if not rows:
                return
            for row in rows:
                yield EntryRow(*row[:9], bytes(row[9]), row[10])
            last = rows[-1][0]

    @contextmanager
    def tree_reader(self) -> Iterator["TreeReader"]:
        """The stored leaf hashes, subtree nodes and checkpoint roots, read in one snapshot
        (a `ledger.subtrees.NodeReader`)."""
        with self.db.read() as tx:
            yield TreeReader(tx)

    def leaf_hashes(self, size: int) -> list[bytes]:
        with self.db.read() as t:
            return [bytes(row[0]) for row in t.all("SELECT leaf_hash FROM entries WHERE seq < ? ORDER BY seq", (size,))]

    def count(self) -> int:
        with self.db.read() as t:
            return t.scalar("SELECT count(*) FROM entries")

    def subjects(self, tx: Tx | None = None) -> list[str]:
        with self.db.reading(tx) as t:
            return [row[0] for row in t.all("SELECT DISTINCT subject FROM entries WHERE subject IS NOT NULL")]

    def subjects_since(self, seq: int, tx: Tx | None = None) -> set[str]:
        with self.db.reading(tx) as t:
            return {row[0] for row in t.all("SELECT DISTINCT subject FROM entries WHERE seq >= ? AND subject IS NOT NULL",
                                            (seq,))}

    def event_types(self) -> set[str]:
        with self.db.read() as t:
            return {row[0] for row in t.all("SELECT DISTINCT type FROM entries WHERE type IS NOT NULL")}


class TreeReader:
    """Range reads of leaf hashes (by seq), of stored subtree nodes, and checkpoint roots, for
    `ledger.subtrees`: a proof makes a handful of these."""

    def __init__(self, tx: Tx):
        self._tx = tx

    def checkpoint_root(self, size: int) -> bytes | None:
        """The root stored with the checkpoint of exactly this size, if an append ended there."""
        row = self._tx.one("SELECT root FROM checkpoints WHERE size = ?", (size,))
        return None if row is None else bytes(row[0])

    def leaf_hashes(self, start: int, end: int) -> list[bytes]:
        return [bytes(row[0]) for row in
                self._tx.all("SELECT leaf_hash FROM entries WHERE seq >= ? AND seq < ? ORDER BY seq", (start, end))]

    def nodes(self, level: int, start: int, end: int) -> list[bytes]:
        return [digest for _index, digest in self.node_rows(level, start, end)]

    def node_rows(self, level: int, start: int, end: int) -> list[tuple[int, bytes]]:
        """(index, hash) of the stored nodes at `level` with index in [start, end): gaps show."""
        return [(index, bytes(digest)) for index, digest in self._tx.all(
            "SELECT idx, hash FROM merkle_nodes WHERE level = ? AND idx >= ? AND idx < ? ORDER BY idx",
            (level, start, end))]


def row_entry(row) -> Entry:
    seq, kind, recorded_us, subject, event_type, occurred_us, provider, key, body = row
    data = json.loads(body)
    if kind == EVENT:
        return Entry(seq, kind, recorded_us, subject, data["subject_kind"], event_type, occurred_us,
                     provider, key, data["attributes"], derived=data.get("derived"))
    if kind == VOID:
        return Entry(seq, kind, recorded_us, subject, target=data["target"], reason=data["reason"])
    return Entry(seq, kind, recorded_us, policy=data.get("policy"), key_fingerprint=data.get("key_fingerprint"))


def _checkpoint(row) -> Checkpoint:
    size, root, frontier, recorded_us = row
    try:
        hashes = json.loads(frontier)
    except ValueError:
        hashes = []  # edited into something that is not JSON: verify reports it, an append refuses it
    return Checkpoint(size, bytes(root), hashes, recorded_us)


def _head(size: int | None, head) -> tuple[int, bytes] | None:
    return None if size is None or head is None else (size, bytes(head))


def _chunks(values: list) -> Iterator[list]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]
