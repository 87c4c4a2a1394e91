"""`verify`: recompute the whole Merkle tree from the stored entries and say what is wrong.

Every entry is checked three ways: its body hashes to its stored leaf hash (else it was
modified), its body names its own position (else entries were reordered or renumbered),
and its indexed columns agree with its body (else someone edited the columns the fold
reads). Positions must run 0, 1, 2, … (a gap is a deletion). The tree rebuilt from the
recomputed leaves must reproduce the root of every checkpoint (else history was rewritten
consistently, hashes and all, somewhere before that checkpoint), and every entry must be
covered by a checkpoint (else it was inserted behind the registry's back). Every subtree
node the recomputed tree completes at a stored level must be stored, with the same hash
(else the proofs that read it would not verify).

It reads rows handed to it (any iterable of stored entries and the checkpoint roots), so it
knows no database; the registry streams them from the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping

from ..instants import TimeFormatError, parse_stored_instant
from ..results import VerifyProblem, VerifyReport
from . import merkle, subtrees

_MAX_PROBLEMS = 1000
_NODE_BATCH = 4096  # recomputed subtree nodes compared with the stored ones per round of range reads

StoredNodes = Callable[[int, int, int], list[tuple[int, bytes]]]  # (level, start, end) → [(index, hash)]


def verify_ledger(rows: Iterable, checkpoints: Mapping[int, bytes], stored_nodes: StoredNodes,
                  progress: Callable[[int], None] | None = None) -> VerifyReport:
    """`rows`: (seq, kind, recorded_us, provider, key, subject, type, occurred_us, body, leaf_hash,
    actor) in seq order; `checkpoints`: size → stored root; `stored_nodes` reads the stored
    subtree nodes of a level in an index range."""
    last_size = max(checkpoints, default=0)
    problems: list[VerifyProblem] = []

    def problem(kind: str, seq: int | None, message: str) -> None:
        if len(problems) < _MAX_PROBLEMS:
            problems.append(VerifyProblem(kind, seq, message))

    frontier = merkle.Frontier()
    expected = 0
    count = 0
    actors: dict[int, str] = {}  # entries that name an actor: a void must name the same one
    node_check = _StoredNodeCheck(stored_nodes, problem)
    for row in rows:
        seq, kind, recorded_us, provider, key, subject, event_type, occurred_us, body, leaf, actor = row
        count += 1
        if seq != expected:
            if seq > expected:
                missing = f"entry #{expected} is" if seq == expected + 1 else f"entries #{expected} to #{seq - 1} are"
                problem("deleted", expected, f"{missing} missing (deleted)")
            expected = seq
        _check_entry(row, problem, actors)
        node_check.expect(subtrees.append_leaf(frontier, merkle.leaf_hash(body.encode("utf-8"))))
        expected += 1
        stored_root = checkpoints.get(frontier.size)
        if stored_root is not None and frontier.root() != stored_root:
            problem(
                "checkpoint",
                None,
                f"the tree of the first {frontier.size} entries does not reproduce its checkpoint root "
                "(history before it was rewritten)",
            )
        if progress is not None and count % 10_000 == 0:
            progress(10_000)
    node_check.compare()
    if progress is not None:
        progress(count % 10_000)
    if expected > last_size:
        problem("inserted", last_size, f"entries #{last_size} to #{expected - 1} are not covered by any checkpoint "
                                       "(inserted outside the registry)")
    for size in sorted(checkpoints):
        if size > expected:
            problem("deleted", expected, f"a checkpoint covers {size} entries but only {expected} are stored "
                                         "(entries deleted from the end)")
            break
    return VerifyReport(
        ok=not problems,
        size=last_size,
        root=checkpoints[last_size].hex() if last_size else merkle.EMPTY_ROOT.hex(),
        entries=count,
        checkpoints=len(checkpoints),
        problems=problems,
    )


class _StoredNodeCheck:
    """Compares the subtree nodes the recomputed tree completes with the stored ones.

    Expected nodes are collected and compared a batch at a time, one range read per level:
    the nodes of a level complete in index order, so a batch's are contiguous.
    """

    def __init__(self, stored_nodes: StoredNodes, problem: Callable[[str, int | None, str], None]):
        self._stored_nodes = stored_nodes
        self._problem = problem
        self._pending: dict[int, list[tuple[int, bytes]]] = {}
        self._count = 0

    def expect(self, nodes: list[subtrees.Node]) -> None:
        for level, index, digest in nodes:
            self._pending.setdefault(level, []).append((index, digest))
        self._count += len(nodes)
        if self._count >= _NODE_BATCH:
            self.compare()

    def compare(self) -> None:
        """Compare every node expected so far with the stored one."""
        for level, expected in self._pending.items():
            stored = dict(self._stored_nodes(level, expected[0][0], expected[-1][0] + 1))
            for index, digest in expected:
                found = stored.get(index)
                if found != digest:
                    self._report(level, index, "is missing (deleted)" if found is None
                                 else "does not match the entries (rewritten)")
        self._pending.clear()
        self._count = 0

    def _report(self, level: int, index: int, what: str) -> None:
        first, last = index << level, ((index + 1) << level) - 1
        self._problem("subtree", first, f"the stored subtree node over entries #{first} to #{last} "
                                        f"(level {level}, #{index}) {what}")


def _check_entry(row, problem, actors: dict[int, str]) -> None:
    seq, kind, recorded_us, provider, key, subject, event_type, occurred_us, body, leaf, actor = row
    if merkle.leaf_hash(body.encode("utf-8")) != leaf:
        problem("modified", seq, f"entry #{seq} does not match its leaf hash (modified)")
    try:
        data = json.loads(body)
    except ValueError:
        problem("modified", seq, f"entry #{seq} is not valid JSON (modified)")
        return
    if kind == "void":
        if actor is not None and actors.get(data.get("target")) != actor:
            problem("modified", seq, f"entry #{seq}: column actor is not the actor of the entry it cancels (modified)")
    elif actor is not None:
        if actor not in (data.get("attributes") or {}).values():
            problem("modified", seq, f"entry #{seq}: column actor is not named in the hashed body (modified)")
        actors[seq] = actor
    if data.get("seq") != seq:
        problem("reordered", seq, f"position #{seq} holds entry #{data.get('seq')} (reordered or renumbered)")
    columns = {
        "kind": kind,
        "recorded_at": recorded_us,
        "provider": provider,
        "key": key,
        "subject": subject,
        "type": event_type,
        "occurred_at": occurred_us,
    }
    for name, value in columns.items():
        if name not in data:
            if value is not None and name in ("provider", "key", "type", "occurred_at"):
                problem("modified", seq, f"entry #{seq}: column {name} is set but its body has none (modified)")
            continue
        stated = data[name]
        if name in ("recorded_at", "occurred_at"):
            try:
                stated = parse_stored_instant(stated)
            except TimeFormatError:
                stated = None  # a time no parser reads: it cannot agree with its column, reported below
        if stated != value:
            problem("modified", seq, f"entry #{seq}: column {name} disagrees with the hashed body (modified)")
