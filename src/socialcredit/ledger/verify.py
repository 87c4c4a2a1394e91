"""`verify`: recompute the Merkle tree and the logs' hash chains from the stored rows, and say what is wrong.

Every entry is checked three ways: its body hashes to its stored leaf hash (else it was
modified), its body names its own position (else entries were reordered or renumbered),
and its indexed columns agree with its body (else someone edited the columns the fold
reads; a column the body does not have, such as a policy entry's subject, must be empty).
Positions must run 0, 1, 2, … (a gap is a deletion). The tree rebuilt from the recomputed
leaves must reproduce the root of every checkpoint (else history was rewritten
consistently, hashes and all, somewhere before that checkpoint) and its frontier (else the
next append would extend a wrong tree, and its honest checkpoint would be blamed), and
every entry must be covered by a checkpoint (else it was inserted behind the registry's
back). Every subtree node the recomputed tree completes at a stored level must be stored,
with the same hash (else the proofs that read it would not verify).

The ledger anchors the pseudonym key's fingerprint (entry #0, or a key entry in a registry
from before entry #0 carried it): it must be the one the meta table names and the key in
use (`check_key`).

The decision log and the audit log are hash chains (`chains.py`, `verify_log`): each row
must link to the row stored before it (else it was modified, or moved: reordered; or a row
between was inserted), positions must run without gaps, and the heads recorded for the log
(in `log_heads`, in every checkpoint, in a published tree head) must be those of the chain
at their counts (else rows before them were rewritten, or cut from the end). A decision must
name a ledger size the ledger has reached and a policy the ledger activated.

What this cannot see: a consistent rewrite (every hash, head and checkpoint recomputed) or a
cut from the end of the ledger with its checkpoints; rows appended to a log after its last
recorded head by someone who also moves the head. A tree head published earlier catches the
first two (`check_published`: a consistency proof); see README, "What verify can and cannot see".

It reads rows handed to it (any iterables of stored rows), so it knows no database; the
registry streams them from the store.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

from ..instants import TimeFormatError, parse_stored_instant
from ..results import VerifyProblem
from . import chains, merkle, subtrees
from .chains import LogRow

_MAX_PROBLEMS = 1000
_NODE_BATCH = 4096  # recomputed subtree nodes compared with the stored ones per round of range reads
_MAX_SUSPECTS = 200  # log rows that do not link, classified (moved? inserted?) by trying each other's hashes
_PROGRESS_EVERY = 10_000

StoredNodes = Callable[[int, int, int], list[tuple[int, bytes]]]  # (level, start, end) → [(index, hash)]
Progress = Callable[[int], None] | None


class Problems:
    """The problems found so far, at most `_MAX_PROBLEMS` of them."""

    def __init__(self) -> None:
        self.found: list[VerifyProblem] = []

    def __call__(self, kind: str, entry: int | None, message: str, **where) -> None:
        if len(self.found) < _MAX_PROBLEMS:
            self.found.append(VerifyProblem(kind, entry, message, **where))


@dataclass
class LedgerFacts:
    """What the ledger's rows say that the other checks need."""

    size: int  # the last checkpoint's: what the registry committed
    root: bytes  # the last checkpoint's root (checked against the entries)
    entries: int  # rows read
    checkpoints: int
    policies: dict[str, int] = field(default_factory=dict)  # digest → the entry that first activated it
    keys: list[tuple[int, str]] = field(default_factory=list)  # (entry, key fingerprint) anchored


class Anchor(NamedTuple):
    """A head recorded for a log: `count` rows, the last with chain hash `head`."""

    count: int
    head: bytes
    where: str  # "in log_heads", "in the checkpoint of ledger size 12", "in the published tree head"
    checkpoint: int | None = None


def verify_ledger(rows: Iterable, checkpoints: Mapping, stored_nodes: StoredNodes, problems: Problems,
                  progress: Progress = None) -> LedgerFacts:
    """`rows`: (seq, kind, recorded_us, provider, key, subject, type, occurred_us, body, leaf_hash,
    actor) in seq order; `checkpoints`: size → a stored checkpoint (`root`, `frontier`: its hex
    hashes); `stored_nodes` reads the stored subtree nodes of a level in an index range."""
    last_size = max(checkpoints, default=0)
    problem = problems
    facts = LedgerFacts(last_size, checkpoints[last_size].root if last_size else merkle.EMPTY_ROOT, 0,
                        len(checkpoints))
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
        _check_entry(row, problem, actors, facts)
        node_check.expect(subtrees.append_leaf(frontier, merkle.leaf_hash(body.encode("utf-8"))))
        expected += 1
        stored = checkpoints.get(frontier.size)
        if stored is not None:
            if frontier.root() != stored.root:
                problem(
                    "checkpoint",
                    None,
                    f"the tree of the first {frontier.size} entries does not reproduce its checkpoint root "
                    "(history before it was rewritten)",
                    checkpoint=frontier.size,
                )
            elif stored.frontier != frontier.to_json():
                problem("frontier", None, f"the checkpoint of size {frontier.size} stores a frontier that is not its "
                                          "tree's (edited): the next append would extend a wrong tree",
                        checkpoint=frontier.size)
        if progress is not None and count % _PROGRESS_EVERY == 0:
            progress(_PROGRESS_EVERY)
    node_check.compare()
    if progress is not None:
        progress(count % _PROGRESS_EVERY)
    if expected > last_size:
        problem("inserted", last_size, f"entries #{last_size} to #{expected - 1} are not covered by any checkpoint "
                                       "(inserted outside the registry)")
    for size in sorted(checkpoints):
        if size > expected:
            problem("deleted", expected, f"a checkpoint covers {size} entries but only {expected} are stored "
                                         "(entries deleted from the end)")
            break
    facts.entries = count
    return facts


def check_key(facts: LedgerFacts, meta_fingerprint: str | None, key_fingerprint: str | None,
              problems: Problems) -> None:
    """The key fingerprint the ledger anchored against the meta table's and the key in use (if loaded)."""
    if not facts.keys:
        if facts.entries:
            problems("key", None, "no ledger entry anchors the pseudonym key's fingerprint (entry #0 or a key "
                                  "entry does, in a registry written by this version)")
        return
    first, anchored = facts.keys[0]
    for seq, other in facts.keys[1:]:
        if other != anchored:
            problems("key", seq, f"entry #{seq} anchors key fingerprint {other}, but entry #{first} anchored "
                                 f"{anchored}: a registry has one key")
    if meta_fingerprint != anchored:
        problems("key", first, f"the meta table names key fingerprint {meta_fingerprint}, but the ledger anchored "
                               f"{anchored} at entry #{first} (the key was swapped)")
    if key_fingerprint is not None and key_fingerprint != anchored:
        problems("key", first, f"the pseudonym key in use has fingerprint {key_fingerprint}, but the ledger "
                               f"anchored {anchored} at entry #{first}: it is not this registry's key")


def check_published(size: int, root: bytes, facts: LedgerFacts, proof: Sequence[bytes] | str,
                    problems: Problems) -> None:
    """Does the ledger extend a tree head published earlier? `proof` is the consistency proof
    from `size` to the last checkpoint's size, read from the stored tree (or why it could not be)."""
    if size > facts.size:
        problems("published", None, f"a tree head of size {size} was published, but the ledger's last checkpoint "
                                    f"is at size {facts.size} (entries were cut from the end)")
    elif isinstance(proof, str):
        problems("published", None, f"no consistency proof from the published size {size}: {proof}")
    elif not merkle.verify_consistency(size, facts.size, root, facts.root, proof):
        problems("published", None, f"the ledger does not extend the tree head published at size {size} "
                                    "(history before it was rewritten)")


class DecisionChecks:
    """A decision must hold at a ledger size the ledger reached, under a policy the ledger activated.

    Decisions made while verify runs may hold at a larger ledger, under a newer policy, than the
    entries it read: a decision that fails against those is looked at again at the end, against
    the ledger as `later` then finds it (its size, every digest it activated).
    """

    _SIZE = chains.DECISION_FIELDS.index("ledger_size")
    _DIGEST = chains.DECISION_FIELDS.index("policy_digest")

    def __init__(self, facts: LedgerFacts, later: Callable[[], tuple[int, set[str]]]):
        self._facts = facts
        self._later = later
        self._pending: list[LogRow] = []

    def row(self, row: LogRow) -> None:
        if (row.values[self._SIZE] > self._facts.size or row.values[self._DIGEST] not in self._facts.policies) \
                and len(self._pending) < _MAX_PROBLEMS:
            self._pending.append(row)

    def finish(self, problems: Problems) -> None:
        if not self._pending:
            return
        size, digests = self._later()
        size = max(size, self._facts.size)
        for row in self._pending:
            where = {"decision": row.name, "position": row.seq}
            held, digest = row.values[self._SIZE], row.values[self._DIGEST]
            if held > size:
                problems("decision-ledger-size", None, f"decision {row.name} holds at ledger size {held}, but the "
                                                       f"ledger's last checkpoint is at size {size} (entries were cut "
                                                       "from the end, or the decision was edited)", **where)
            if digest not in self._facts.policies and digest not in digests:
                problems("decision-policy", None, f"decision {row.name} names policy {digest}, which the ledger "
                                                  "never activated", **where)


_NOUNS = {chains.DECISIONS: ("decision", "decision"), chains.AUDIT: ("audit", "audit record")}


def verify_log(log: str, rows: Iterable[LogRow], anchors: Sequence[Anchor], problems: Problems, *,
               head: Anchor | None, head_later: Callable[[], Anchor | None], checks: DecisionChecks | None = None,
               progress: Progress = None) -> int:
    """Recompute a log's hash chain from its rows (in position order; unnumbered ones first).

    `anchors` are the heads recorded elsewhere (checkpoints, a published tree head); `head` is the
    one in log_heads, read before the rows. Rows may be appended while they are read, so the
    rows beyond the head are judged against the head as `head_later` reads it afterwards: a row
    beyond that one the registry did not write. Returns how many rows were read.
    """
    prefix, noun = _NOUNS[log]
    chain = _Chain(log, prefix, noun, problems)
    if head is None:
        problems(f"{prefix}-rewritten", None, f"the {noun} log has no head in log_heads (deleted)")
    else:
        anchors = [*anchors, head]
    wanted = {a.count for a in anchors}
    heads: dict[int, bytes | None] = {}
    beyond: list[LogRow] = []  # rows past the head read first: appended since, or not the registry's
    count = 0
    for row in rows:
        count += 1
        if checks is not None:
            checks.row(row)
        if chain.add(row):
            if head is not None and row.seq >= head.count and len(beyond) < _MAX_PROBLEMS:
                beyond.append(row)
            if row.seq + 1 in wanted:
                heads[row.seq + 1] = row.chain
        if progress is not None and count % _PROGRESS_EVERY == 0:
            progress(_PROGRESS_EVERY)
    if progress is not None:
        progress(count % _PROGRESS_EVERY)
    chain.classify()
    if checks is not None:
        checks.finish(problems)
    later = head_later() if beyond else None
    for row in beyond:
        if later is None or row.seq >= later.count:
            chain.report("inserted", row, "is beyond the head the registry recorded for the log "
                                          f"({later.count if later else 0} rows): inserted outside the registry")
    # A rewrite makes every head recorded after it disagree: name the first of each kind, count the rest.
    cut = [a for a in anchors if a.count > chain.expected]
    stored = [a for a in anchors if a.count <= chain.expected]
    rewritten = [a for a in stored
                 if heads.get(a.count, chains.genesis(log) if a.count == 0 else None) != a.head]
    if cut:
        first = max(cut, key=lambda a: a.count)
        problems(f"{prefix}-deleted", None, f"the {noun} log held {first.count} rows by the head recorded "
                                            f"{first.where}, but only {chain.expected} are stored (rows deleted from "
                                            f"the end){_and_more(len(cut) - 1)}", position=chain.expected,
                 checkpoint=first.checkpoint)
    if rewritten:
        first = min(rewritten, key=lambda a: a.count)
        problems(f"{prefix}-rewritten", None, f"the first {first.count} rows of the {noun} log do not reproduce "
                                              f"the head recorded {first.where} (rows before it were rewritten)"
                                              f"{_and_more(len(rewritten) - 1)}",
                 position=max(first.count - 1, 0), checkpoint=first.checkpoint)
    return count


def _and_more(others: int) -> str:
    return f"; {others} other recorded head{'s' if others != 1 else ''} disagree{'s' if others == 1 else ''} too" \
        if others else ""


class _Suspect(NamedTuple):
    row: LogRow
    previous: tuple[bytes, int, str | None]  # (chain hash, position, name) of the row stored before it
    before_previous: tuple[bytes, int, str | None] | None  # the same of the row before that


class _Chain:
    """Walks a log's rows in position order, checking that each links to the one stored before it.

    A row that does not link is a suspect; once all are read, each suspect's stored hash is
    tried against the hashes around the other suspects: linking to the row two back means
    the row between was inserted; linking to another suspect's neighbour means it was moved
    (reordered); linking nowhere means it was modified (or the row logged before it deleted).
    """

    def __init__(self, log: str, prefix: str, noun: str, problems: Problems):
        self._prefix, self._noun, self._problems = prefix, noun, problems
        self.expected = 0
        self._previous: bytes | None = chains.genesis(log)  # None: unknown (after a gap or an unhashed row)
        self._before: tuple[bytes, int, str | None] | None = None
        self._previous_name: str | None = None  # (the genesis is "row #-1")
        self._suspects: list[_Suspect] = []

    def label(self, seq: int | None, name: str | None) -> str:
        if seq == -1:
            return "the log's start"  # the genesis hash, "before" row #0
        where = "with no position" if seq is None else f"#{seq}"
        return f"{self._noun} {name} ({where})" if name else f"{self._noun} {where}"

    def report(self, what: str, row: LogRow, message: str) -> None:
        self.report_at(what, row.seq, row.name, message)

    def report_at(self, what: str, seq: int | None, name: str | None, message: str) -> None:
        where = {"position": seq} if name is None else {"decision": name, "position": seq}
        self._problems(f"{self._prefix}-{what}", None, f"{self.label(seq, name)} {message}", **where)

    def add(self, row: LogRow) -> bool:
        """Check one row (the next by position); False if it has no place in the chain at all."""
        if row.seq is None or row.seq < self.expected:  # none, negative or taken twice: never the registry's
            self.report("inserted", row, "has no position of its own in the log's hash chain (inserted outside "
                                         "the registry)")
            return False
        if row.seq != self.expected:
            first, last = self.expected, row.seq - 1
            missing = f"#{first} is" if first == last else f"#{first} to #{last} are"
            self._problems(f"{self._prefix}-deleted", None, f"{self._noun} {missing} missing from the log (deleted)",
                           position=first)
            self._previous = self._before = None
            self.expected = row.seq
        if row.chain is None:
            self.report("inserted", row, "has no chain hash (inserted outside the registry)")
        elif self._previous is not None and chains.link(self._previous, row.values) != row.chain:
            if len(self._suspects) < _MAX_SUSPECTS:
                previous = (self._previous, row.seq - 1, self._previous_name)
                self._suspects.append(_Suspect(row, previous, self._before))
            else:
                self.report("modified", row, "does not match its chain hash (modified)")
        self._before = None if self._previous is None else (self._previous, row.seq - 1, self._previous_name)
        self._previous, self._previous_name = row.chain, row.name
        self.expected += 1
        return True

    def classify(self) -> None:
        around: dict[bytes, tuple[int, str | None]] = {}  # hashes near the suspects → (position, name)
        for suspect in self._suspects:
            around[suspect.row.chain] = (suspect.row.seq, suspect.row.name)
            for neighbour in (suspect.previous, suspect.before_previous):
                if neighbour is not None:
                    around.setdefault(neighbour[0], neighbour[1:])
        follows = {s.row.seq: next((where for digest, where in around.items()
                                    if chains.link(digest, s.row.values) == s.row.chain), None)
                   for s in self._suspects}
        # Linking to the row two back, while the row between links nowhere else: that row was inserted.
        inserted = {seq - 1 for seq, where in follows.items()
                    if where is not None and where[0] == seq - 2 and follows.get(seq - 1) is None}
        logged_at: dict[int, int | None] = {}

        def position(seq: int) -> int | None:
            """Where a suspect was logged: one after the row it follows (itself perhaps moved)."""
            if seq not in logged_at:
                logged_at[seq] = None  # no cycle can form (hashes), but stay finite whatever the rows
                where = follows[seq]
                if where is not None:
                    before = position(where[0]) if follows.get(where[0]) is not None else where[0]
                    logged_at[seq] = None if before is None else before + 1
            return logged_at[seq]

        for suspect in self._suspects:
            row, where = suspect.row, follows[suspect.row.seq]
            if row.seq in inserted:
                continue
            if where is None:
                self.report("modified", row, "does not match its chain hash (modified, or the row logged before it "
                                             "was deleted)")
            elif row.seq - 1 in inserted:
                self.report_at("inserted", row.seq - 1, suspect.previous[2], "is not in the log's hash chain: the row "
                               "after it links to the row before it (inserted outside the registry)")
            elif position(row.seq) != row.seq:  # else it is in its place, after a row that was moved
                logged = "" if position(row.seq) is None else f"was logged at #{position(row.seq)}, "
                self.report("reordered", row, f"{logged}after {self.label(*where)} in the hash chain (reordered)")


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


def _check_entry(row, problem, actors: dict[int, str], facts: LedgerFacts) -> None:
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
    _note_facts(seq, kind, data, facts)
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
            # A column the body has not must be empty: a policy entry with a subject would be
            # read into that subject's history.
            if value is not None:
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


def _note_facts(seq: int, kind: str, data: dict, facts: LedgerFacts) -> None:
    """The policies activated and the key fingerprints anchored, as the hashed bodies say."""
    if kind == "policy":
        policy = data.get("policy")
        digest = policy.get("digest") if isinstance(policy, dict) else None
        if isinstance(digest, str):
            facts.policies.setdefault(digest, seq)
    if kind in ("policy", "key") and isinstance(data.get("key_fingerprint"), str):
        facts.keys.append((seq, data["key_fingerprint"]))
