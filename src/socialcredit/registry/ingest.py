"""Appending to the ledger: provider events (ingest), corrections (void), registry events.

    validate every event (policy catalogue, pseudonyms)      nothing written yet
        (a batch longer than STREAM_CHUNK streams: each chunk is validated and appended
        in turn, in the one transaction below, and memory holds one chunk; the rest of a
        JSON lines file is parsed and validated by a second process meanwhile:
        intake/parallel.py)
    one write transaction holding the append lock:
        catch up with other processes; refuse if the policy changed meanwhile
        deduplicate by (provider, key); assess ratings (limits, the rater's weight)
        canonical bodies, Merkle leaves, the checkpoint
        entries + checkpoint, then the touched subjects' materialized standings (folding
        only the new events of a subject whose fold state can take them: scoring/incremental.py)
        whatever the caller's `in_commit` writes with the result (a submission's record, an
        idempotency key's stored response)
    commit, or on any error or Ctrl-C roll back: all of the batch or none of it
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from itertools import chain, islice
from typing import NamedTuple

from ..errors import Conflict, InvalidInput, NotFound, Tampered
from ..instants import format_instant, now_us
from ..intake.dedupe import sort_out
from ..intake.identity import Pseudonymizer
from ..intake.readers import JsonLines
from ..intake.validation import REGISTRY_PROVIDER, InputError, ValidEvent, Validator
from ..ledger import merkle, subtrees
from ..ledger.entries import EVENT, VOID, Entry, attributes_json
from ..policy.compiled import Policy
from ..ratings import intake as ratings_intake
from ..results import IngestProblem, IngestResult
from ..scoring import incremental
from ..scoring.compact import CompactStanding, compact, stored_fields
from ..store import Checkpoint, FoldStateRow, StandingRow, Store, Tx, entry_row
from ..store.database import Waiter
from .audit import AuditTrail, audit_row
from .caller import Caller
from .policies import PolicyBook, keep_snapshot
from .standings import Standings, standing_row
from .view import LedgerView

_READ_CHUNK = 2_000  # subjects whose histories are read per query
MAX_SEQ = 2**63  # entry numbers are 64-bit: a larger one names no entry (and would not fit a query)
STREAM_CHUNK = 20_000  # events a longer batch is read, validated and appended in at a time
_STREAM_SUBJECTS = 250  # subjects materialized at a time at the end of a streamed batch (bounds memory)
_KERNEL_ROWS = 40_000  # events of new subjects scored by the kernel at a time (bounds memory)
_KERNEL_STATES = 200  # advanced fold states from which on the kernel evaluates them together

RawEvents = Iterable[tuple[int | None, dict | InputError] | dict]
InCommit = Callable[[Tx, IngestResult], None]  # called in the writing transaction, with its result


class Appender:
    """The one way entries get into the ledger, shared by every kind of append."""

    def __init__(self, store: Store, policies: PolicyBook, view: LedgerView, standings: Standings,
                 audit: AuditTrail, pseudonymizer: Callable[[], Pseudonymizer]):
        self._store = store
        self._policies = policies
        self._view = view
        self._standings = standings
        self._audit = audit
        self._pseudonymizer = pseudonymizer

    # -- provider events ----------------------------------------------------------------------

    def ingest(self, events: RawEvents, *, provider: str | None = None, skip_invalid: bool = False,
               progress: Callable[[int], None] | None = None, on_wait: Waiter | None = None,
               clock: Callable[[], int] | None = None, in_commit: InCommit | None = None) -> IngestResult:
        """Validate every event, then append the new ones in one transaction (or none of them).

        `events` are dicts, or (line, dict | InputError) pairs from `read_events`. With
        `skip_invalid` the good events go in and the bad ones are listed; without it one bad
        event refuses the whole batch and nothing is written. `clock` is the registry's time,
        which no event may be later than (beyond the allowed skew); default the system clock,
        a simulation passes its own. `in_commit`, if given, is called in that transaction with
        the result as it will be returned, just before the commit: what it writes commits with
        the batch or not at all (it is not called when nothing is written).
        """
        with _no_cyclic_gc():
            policy = self._policies.current
            validator = Validator(policy, self._pseudonymizer(), provider, clock=clock)
            items = enumerate(events, start=1)
            # A batch of one chunk (or under a policy with ratings, whose intake limits look at
            # the whole batch) is validated whole before the write lock is taken; a longer
            # one streams, chunk by chunk, in one transaction.
            head = list(islice(items, None if policy.ratings is not None else STREAM_CHUNK))
            valid, errors = _validate(validator, head, progress)
            rest = _the_rest(events, items, validator, clock)
            following = next(rest, None)
            if following is not None:
                with closing(rest):  # (a child validating the rest ends with it)
                    return self._stream(policy, validator, valid, errors, chain((following,), rest), skip_invalid,
                                        progress, on_wait, in_commit)
            result = IngestResult(rejected=len(errors), errors=errors)
            if errors and not skip_invalid:
                return self._unwritten(result, self._store.ledger.last_checkpoint())
            return self.append_events(policy, valid, result, skip_invalid, on_wait, in_commit)

    def _stream(self, policy: Policy, validator: Validator, valid: list[ValidEvent], invalid: list[IngestProblem],
                rest: Iterator, skip_invalid: bool, progress: Callable[[int], None] | None,
                on_wait: Waiter | None, in_commit: InCommit | None) -> IngestResult:
        """A long batch in chunks of `STREAM_CHUNK`, all in one transaction: read, validate,
        deduplicate and append a chunk, then the next; then the touched subjects' standings and
        one checkpoint.

        The outcome is the one-piece batch's: without `skip_invalid`, one bad line (the rest
        are still read, so that every bad line is listed) or one conflicting key rolls all of
        it back; a key reused within the batch is reported with the line that used it first.
        Memory holds one chunk, the batch's line numbers and what the kernel reads of each
        event (8 bytes a value: `ColumnBuilder`) and the caches.
        """
        from ..scoring.batch import ColumnBuilder  # NumPy: only for a batch long enough to stream

        result = IngestResult()
        conflicts: list[IngestProblem] = []
        lines = array("q")  # the input line of each entry this batch wrote, by seq - first
        try:
            with self._store.db.write(append=True, on_wait=on_wait) as tx:
                before = self._store.ledger.last_checkpoint(tx)
                first = size = before.size if before else 0
                if self._view.catch_up(size) and self._policies.current.digest != policy.digest:
                    raise Conflict(f"another process put policy {self._policies.current.label} in force while this "
                                   "batch was being checked; nothing was written: send it again")
                frontier = _frontier(before)
                recorded = now_us()
                writing = skip_invalid or not invalid
                written = ColumnBuilder(policy)  # what the batch wrote, as the kernel's columns
                while True:
                    if writing and valid:
                        size = self._append_chunk(tx, policy, valid, first, size, frontier, recorded, lines,
                                                  conflicts, result, written)
                    chunk = list(islice(rest, STREAM_CHUNK))
                    if not chunk:
                        break
                    valid, errors = _validate(validator, chunk, progress)
                    invalid += errors
                    writing = writing and (skip_invalid or not errors)
                if invalid and not skip_invalid:
                    raise _Unwritten(IngestResult(rejected=len(invalid), errors=invalid))
                if conflicts and not skip_invalid:
                    raise _Unwritten(IngestResult(rejected=len(conflicts), errors=conflicts))
                result.errors = invalid + conflicts
                result.rejected = len(result.errors)
                if size == first:
                    raise _Unwritten(result)
                self._materialize_since(tx, policy, first, size, recorded, result, written)
                checkpoint = Checkpoint(frontier.size, frontier.root(), frontier.to_json(), now_us())
                self._store.ledger.append_checkpoint(tx, checkpoint)
                _written(result, checkpoint.size - first, checkpoint)
                if in_commit is not None:
                    in_commit(tx, result)
        except _Unwritten as refused:
            return self._unwritten(refused.result, self._store.ledger.last_checkpoint())
        self._view.appended_many(checkpoint.size)
        return result

    def _append_chunk(self, tx: Tx, policy: Policy, valid: list[ValidEvent], first: int, size: int,
                      frontier: merkle.Frontier, recorded: int, lines: array, conflicts: list[IngestProblem],
                      result: IngestResult, written) -> int:
        """One chunk of a streamed batch: its new events appended, and added to `written` (a
        ColumnBuilder) to be materialized at the end."""
        existing = self._store.ledger.existing_events(tx, [(e.provider, e.key) for e in valid]) if size else {}
        sorted_out = sort_out(valid, existing, lambda seq: lines[seq - first] if seq >= first else None)
        result.duplicates += sorted_out.duplicates
        conflicts += sorted_out.conflicts
        entries = [_event_entry(size + n, recorded, event, None) for n, event in enumerate(sorted_out.fresh)]
        if not entries:
            return size
        lines.extend(-1 if event.line is None else event.line for event in sorted_out.fresh)
        rows, nodes = self._hash_rows(policy, frontier, entries)
        self._store.ledger.append_rows(tx, rows, nodes)
        code, add = written.subject_code, written.add_event
        for entry in entries:
            add(code(entry.subject), entry.seq, entry.type, entry.occurred_us, entry.attributes)
        return size + len(entries)

    def _materialize_since(self, tx: Tx, policy: Policy, first: int, size: int, recorded: int,
                           result: IngestResult, written) -> None:
        """The standings of every subject a streamed batch touched, each folded once, at the end
        (a subject's events are spread over the chunks: folding it per chunk folded it again and
        again).

        Subjects the ledger did not know before this batch are scored together by the batch
        kernel from `written` (the batch's events as columns), and their fold states read off
        its columns (`_materialize_new`); the rest (and any the kernel would leave to the fold)
        from their new entries read back in this transaction and their states or histories
        (`_materialize`), a few hundred subjects at a time."""
        new = self._kernel_subjects(tx, policy, first, recorded, written)
        if new is not None:
            self._materialize_new(tx, policy, written, new, size, recorded, result)
        subjects = sorted(s for code, s in enumerate(written.subjects) if new is None or not new[code])
        for start in range(0, len(subjects), _STREAM_SUBJECTS):
            chunk = subjects[start : start + _STREAM_SUBJECTS]
            entries = self._store.ledger.entries_for_subjects(chunk, tx, since=first)
            self._materialize(tx, policy, entries, first, size, recorded, result)

    def _kernel_subjects(self, tx: Tx, policy: Policy, first: int, as_of: int, written):
        """Which of the batch's subjects (by code in `written`) the kernel scores: those with no
        entry before the batch, no event the kernel leaves to the fold (lists) and none after
        `as_of` (the fold leaves future events out, a state cannot); None when the materialized
        standings are not the fold's with states kept (see `_materialize`)."""
        if not (incremental.supports(policy) and self._standings.engine.name == "fold"):
            return None
        import numpy as np

        from ..scoring.batch.kernel import fallback_types

        columns = written.columns()
        subject = columns["subject"]
        scored = np.ones(len(written.subjects), dtype=bool)
        folded = fallback_types(policy)
        flagged = np.array([name in folded for name in columns["type_names"]] + [False], dtype=bool)
        scored[subject[flagged[columns["type"]]]] = False
        scored[subject[columns["occurred_us"] > as_of]] = False
        known = self._store.ledger.subjects_known_before(written.subjects, first, tx) if first else ()
        for pseudonym in known:
            scored[written.subject_code(pseudonym)] = False
        return scored

    def _materialize_new(self, tx: Tx, policy: Policy, written, scored, size: int, as_of: int,
                         result: IngestResult) -> None:
        """The standings and fold states of the subjects `scored` marks, by the batch kernel,
        in groups of about `_KERNEL_ROWS` events (bounds memory)."""
        import numpy as np

        from ..scoring.batch import score_columns, subset
        from ..scoring.batch.states import fold_states

        columns = written.columns()
        subject = columns["subject"]
        codes = np.flatnonzero(scored)
        rows_before = np.cumsum(np.bincount(subject, minlength=scored.size)[codes])
        cuts = np.searchsorted(rows_before, np.arange(_KERNEL_ROWS, int(rows_before[-1]) if codes.size else 0,
                                                      _KERNEL_ROWS), side="right")
        digest = policy.digest
        for group in np.split(codes, cuts):
            if not group.size:
                continue
            chosen = np.zeros(scored.size, dtype=bool)
            chosen[group] = True
            part = subset(columns, np.flatnonzero(chosen[subject]))
            scores = score_columns(policy, part, as_of)
            self._store.standings.put(tx, [StandingRow(pseudonym, digest, size, *fields)
                                           for pseudonym, fields in scores.stored_rows()])
            self._store.fold_states.put(tx, [FoldStateRow(pseudonym, digest, size, state.to_json())
                                             for pseudonym, state in fold_states(policy, part, scores)])
            result.folded_whole += len(group)

    def append_events(self, policy: Policy, valid: list[ValidEvent], result: IngestResult, skip_invalid: bool,
                      on_wait: Waiter | None = None, in_commit: InCommit | None = None) -> IngestResult:
        """Deduplicate, assess ratings, append, checkpoint and materialize, in one transaction
        (with what `in_commit` writes, as `ingest` says)."""
        with self._store.db.write(append=True, on_wait=on_wait) as tx:
            checkpoint = self._store.ledger.last_checkpoint(tx)
            size = checkpoint.size if checkpoint else 0
            if self._view.catch_up(size) and self._policies.current.digest != policy.digest:
                raise Conflict(f"another process put policy {self._policies.current.label} in force while this "
                               "batch was being checked; nothing was written: send it again")
            existing = self._store.ledger.existing_events(tx, [(e.provider, e.key) for e in valid]) if size else {}
            sorted_out = sort_out(valid, existing)
            result.duplicates = sorted_out.duplicates
            fresh, conflicts = sorted_out.fresh, sorted_out.conflicts
            assessment = self._assess_ratings(tx, policy, fresh, size)
            conflicts += [IngestProblem(fresh[i].line, message) for i, message in sorted(assessment.errors.items())]
            if conflicts:
                result.errors.extend(conflicts)
                result.rejected += len(conflicts)
                if not skip_invalid:
                    result.duplicates = 0
                    return self._unwritten(result, checkpoint)  # nothing was written: the commit is empty
            kept = [i for i in range(len(fresh)) if i not in assessment.errors]
            if not kept:
                return self._unwritten(result, checkpoint)
            recorded = now_us()
            entries = [_event_entry(size + n, recorded, fresh[i], assessment.derived.get(i))
                       for n, i in enumerate(kept)]
            new_checkpoint, touched = self._write(tx, policy, checkpoint, entries, result=result)
            _written(result, len(entries), new_checkpoint)
            if in_commit is not None:
                in_commit(tx, result)
        self._view.appended(new_checkpoint.size, touched.histories, touched.advanced)
        return result

    def _assess_ratings(self, tx: Tx, policy: Policy, fresh: list[ValidEvent], size: int):
        people = ratings_intake.people_in(policy, fresh)
        if not people:
            return ratings_intake.Assessment({}, {})
        histories = self.prior_histories(tx, people, size)
        given = {rater: self._store.ledger.entries_by_actor(rater, policy.ratings.event, tx)
                 for rater in ratings_intake.raters_in(policy, fresh)}
        return ratings_intake.assess(policy, fresh, histories, given, self._standings.engine)

    @staticmethod
    def _unwritten(result: IngestResult, checkpoint: Checkpoint | None) -> IngestResult:
        result.ledger_size = checkpoint.size if checkpoint else 0
        result.root = (checkpoint.root if checkpoint else merkle.EMPTY_ROOT).hex()
        return result

    # -- the registry's own entries -----------------------------------------------------------

    def registry_event(self, policy: Policy, subject: str, event_type: str, at_us: int, key: str,
                       attributes: dict) -> ValidEvent:
        """An event the registry itself reports (provider `socialcredit`), about a pseudonym."""
        attributes = policy.validate_event(event_type, attributes, "person")
        return ValidEvent(None, subject, "person", event_type, at_us, REGISTRY_PROVIDER, key, attributes,
                          attributes_json(attributes))

    def void(self, seq: int, reason: str, caller: Caller, on_wait: Waiter | None = None) -> Entry:
        """Cancel an event with a new entry that names it and says why (nothing is deleted)."""
        if not reason or not reason.strip():
            raise InvalidInput("a correction needs a reason")
        target = self._store.ledger.entry(seq) if 0 <= seq < MAX_SEQ else None
        if target is None or target.kind != EVENT:
            raise NotFound(f"entry #{seq} is not an event in this ledger")
        policy = self._policies.current
        with self._store.db.write(append=True, on_wait=on_wait) as tx:
            checkpoint = self._store.ledger.last_checkpoint(tx)
            self._view.catch_up(checkpoint.size)
            already = [e for e in self._store.ledger.entries_for_subject(target.subject, tx)
                       if e.kind == VOID and e.target == seq]
            if already:
                raise Conflict(f"entry #{seq} was already cancelled by entry #{already[0].seq}")
            # The void names the same actor (a rater) as the entry it cancels, so the rater's
            # daily cap and reviewer record can leave cancelled ratings out.
            references = policy.reference_attributes.get(target.type, ())
            actor = target.attributes.get(references[0][0]) if references else None
            entry = Entry(checkpoint.size, VOID, now_us(), subject=target.subject, target=seq, reason=reason.strip())
            new_checkpoint, touched = self._write(tx, policy, checkpoint, [entry], {entry.seq: actor} if actor else None)
            self._store.audit.insert(tx, [audit_row(caller, "void", target.subject,
                                                    {"entry": entry.seq, "cancels": seq})])
        self._view.appended(new_checkpoint.size, touched.histories, touched.advanced)
        return entry

    def append_policy(self, policy: Policy, body: dict, caller: Caller, detail: dict,
                      on_wait: Waiter | None = None,
                      in_commit: Callable[[Tx, tuple[Entry, Checkpoint]], None] | None = None
                      ) -> tuple[Entry, Checkpoint]:
        """A policy activation entry, audited in the same transaction (with what `in_commit`
        writes, given the entry and its checkpoint)."""
        from ..ledger.entries import POLICY

        with self._store.db.write(append=True, on_wait=on_wait) as tx:
            checkpoint = self._store.ledger.last_checkpoint(tx)
            size = checkpoint.size if checkpoint else 0
            self._view.catch_up(size)
            # Entry #0 anchors the pseudonym key's fingerprint in the ledger, so that a key
            # swapped together with the meta table's fingerprint shows in `verify`.
            entry = Entry(size, POLICY, now_us(), policy=body,
                          key_fingerprint=None if size else self._pseudonymizer().fingerprint)
            rows, nodes, new_checkpoint = self.hash_entries(policy, checkpoint, [entry])
            self._store.ledger.append(tx, rows, new_checkpoint, nodes)
            self._store.audit.insert(tx, [audit_row(caller, "activate", None, detail)])
            keep_snapshot(self._store, tx, policy)
            if in_commit is not None:
                in_commit(tx, (entry, new_checkpoint))
        return entry, new_checkpoint

    # -- writing ------------------------------------------------------------------------------

    def _write(self, tx: Tx, policy: Policy, checkpoint: Checkpoint | None, entries: list[Entry],
               actors: dict[int, str] | None = None, result: IngestResult | None = None):
        rows, nodes, new_checkpoint = self.hash_entries(policy, checkpoint, entries, actors)
        self._store.ledger.append(tx, rows, new_checkpoint, nodes)
        touched = self._materialize(tx, policy, _by_subject(entries), checkpoint.size if checkpoint else 0,
                                    new_checkpoint.size, entries[0].recorded_us, result)
        return new_checkpoint, touched

    def _materialize(self, tx: Tx, policy: Policy, new_by_subject: dict[str, list[Entry]], first_new: int,
                     size: int, as_of: int, result: IngestResult | None = None) -> "_Touched":
        """The standings of the subjects `new_by_subject` names, as of `as_of`, and their fold states.

        A subject whose kept fold state can take its new entries (scoring/incremental.py:
        none out of time order, no void, the same policy) folds only those; any other has its
        whole history read and folded, and its state made again from it. Under a policy the
        incremental fold does not cover (ratings), or another engine than the fold, every
        subject is folded whole by the engine and no state is kept.
        """
        use_states = incremental.supports(policy) and self._standings.engine.name == "fold"
        subjects = sorted(new_by_subject)
        digest = policy.digest
        rows: list[StandingRow] = []
        states: list[FoldStateRow] = []
        advanced: list[str] = []
        if use_states:
            moved: list[tuple[str, incremental.FoldState]] = []
            for subject, row in self._store.fold_states.get_many(tx, subjects).items():
                if row.policy_digest != policy.digest:
                    continue
                state = incremental.FoldState.from_json(row.body)
                new = new_by_subject[subject]
                if incremental.can_advance(policy, state, new, as_of):
                    incremental.advance(policy, state, new)
                    moved.append((subject, state))
                    states.append(FoldStateRow(subject, policy.digest, size, state.to_json()))
                    advanced.append(subject)
            rows.extend(StandingRow(subject, digest, size, *fields)
                        for subject, fields in _stored_standings_of_states(policy, moved, as_of))
        done = set(advanced)
        rest = [s for s in subjects if s not in done]
        prior = self.prior_histories(tx, rest, first_new)
        histories = {s: prior.get(s, []) + new_by_subject[s] for s in rest}
        # A state keeps every event, the fold leaves out those after `as_of`: such a subject
        # (or any, without states) is folded by the engine and keeps no state.
        kept = [(s, histories[s]) for s in rest if not _has_later_event(histories[s], as_of)] if use_states else []
        for subject, standing, state in _rebuilt_states(policy, kept, as_of):
            rows.append(standing_row(subject, standing, size))
            states.append(FoldStateRow(subject, policy.digest, size, state.to_json()))
        stateful = {subject for subject, _history in kept}
        whole = [(s, histories[s]) for s in rest if s not in stateful]
        dropped = [subject for subject, _history in whole]
        rows.extend(standing_row(subject, standing, size)
                    for subject, standing in self._standings.engine.compact_standings(policy, whole, as_of))
        self._store.standings.put(tx, rows)
        if states:
            self._store.fold_states.put(tx, states)
        if dropped:
            self._store.fold_states.delete(tx, dropped)  # none may outlive the entries it lacks
        if result is not None:
            result.folded_incrementally += len(advanced)
            result.folded_whole += len(rest)
        return _Touched(histories, advanced)

    def hash_entries(self, policy: Policy, checkpoint: Checkpoint | None, entries: list[Entry],
                     actors: dict[int, str] | None = None):
        """Canonical bodies, leaf hashes, the subtree nodes they complete and the checkpoint that
        will cover them."""
        frontier = _frontier(checkpoint)
        rows, nodes = self._hash_rows(policy, frontier, entries, actors)
        return rows, nodes, Checkpoint(frontier.size, frontier.root(), frontier.to_json(), now_us())

    @staticmethod
    def _hash_rows(policy: Policy, frontier: merkle.Frontier, entries: list[Entry],
                   actors: dict[int, str] | None = None):
        """Canonical bodies, leaf hashes (extending `frontier`) and the subtree nodes they complete."""
        recorded_at = format_instant(entries[0].recorded_us)
        raters = {t: r[0][0] for t, r in policy.reference_attributes.items() if r}
        actors = actors or {}
        rows, nodes = [], []
        for entry in entries:
            body = entry.canonical(recorded_at)
            leaf = merkle.leaf_hash(body.encode("utf-8"))
            nodes.extend(subtrees.append_leaf(frontier, leaf))
            if raters or actors:  # who acted: a rater, or the rater of a cancelled rating
                named = raters.get(entry.type)
                actor = entry.attributes.get(named) if named else actors.get(entry.seq)
            else:
                actor = None
            rows.append(entry_row(entry, body, leaf, actor))
        return rows, nodes

    def prior_histories(self, tx: Tx, subjects: list[str], size: int) -> dict[str, list[Entry]]:
        """The entries (< size) about each subject, from the history cache or the store."""
        found: dict[str, list[Entry]] = {}
        missing = []
        for subject in subjects:
            history = self._view.histories.get(subject)
            if history is None:
                missing.append(subject)
            else:
                found[subject] = history
        if size:
            for start in range(0, len(missing), _READ_CHUNK):
                chunk = missing[start : start + _READ_CHUNK]
                read = self._store.ledger.entries_for_subjects(chunk, tx, before=size)
                for subject in chunk:
                    found[subject] = read.get(subject, [])
        else:
            found.update((subject, []) for subject in missing)
        return found


def _written(result: IngestResult, accepted: int, checkpoint: Checkpoint) -> None:
    """The result of a batch that wrote: filled in before its commit, so `in_commit` sees it whole."""
    result.accepted = accepted
    result.written = True
    result.ledger_size = checkpoint.size
    result.root = checkpoint.root.hex()


def _has_later_event(history: list[Entry], as_of: int) -> bool:
    return any(entry.kind == EVENT and entry.occurred_us > as_of for entry in history)


def _rebuilt_states(policy: Policy, histories: list[tuple[str, list[Entry]]],
                    as_of: int) -> Iterator[tuple[str, CompactStanding, "incremental.FoldState"]]:
    """(subject, standing at `as_of`, fold state) of whole histories with no event after
    `as_of`: by the batch kernel for many at once, one by one for a few (no NumPy for a small
    batch)."""
    if len(histories) >= _KERNEL_STATES:
        from ..scoring.batch.states import whole_states

        yield from whole_states(policy, histories, as_of)
        return
    for subject, history in histories:
        state = incremental.build(policy, history)
        yield subject, compact(incremental.standing_at(policy, state, as_of, subject)), state


def _stored_standings_of_states(policy: Policy, states: list[tuple[str, "incremental.FoldState"]],
                                as_of: int) -> list[tuple[str, tuple]]:
    """(subject, `compact.stored_fields` of the standing its advanced fold state gives at
    `as_of`): by the batch kernel for many at once, one by one for a few (no NumPy for a small
    batch: a check's process stays lean)."""
    if len(states) < _KERNEL_STATES:
        return [(subject, stored_fields(compact(incremental.standing_at(policy, state, as_of, subject))))
                for subject, state in states]
    from ..scoring.batch.states import stored_standings

    return list(stored_standings(policy, states, as_of))


def _frontier(checkpoint: Checkpoint | None) -> merkle.Frontier:
    """The last checkpoint's frontier, to extend; refused if it does not give the checkpoint's root.

    An edited frontier would make this append's checkpoint wrong, and `verify` would then
    blame this honest append; a root from the frontier costs a few hashes.
    """
    if checkpoint is None:
        return merkle.Frontier()
    try:
        frontier = merkle.Frontier.from_json(checkpoint.size, checkpoint.frontier)
    except ValueError:
        frontier = None
    if frontier is None or frontier.root() != checkpoint.root:
        raise Tampered(f"the checkpoint of size {checkpoint.size} stores a frontier that does not give its root "
                       "(edited behind the registry's back): nothing was written; run `socialcredit verify`")
    return frontier


class _Touched(NamedTuple):
    histories: dict[str, list[Entry]]  # whole histories read (for the history cache)
    advanced: list[str]  # subjects folded from their state: their cached histories are stale


def _by_subject(entries: list[Entry]) -> dict[str, list[Entry]]:
    by_subject: dict[str, list[Entry]] = {}
    for entry in entries:
        if entry.subject is not None:
            by_subject.setdefault(entry.subject, []).append(entry)
    return by_subject


def _the_rest(events: RawEvents, items: Iterator, validator: Validator, clock: Callable[[], int] | None) -> Iterator:
    """What follows a batch's first chunk: the same items, or for a JSON lines input with more
    lines, under the system clock, on a machine with a core to spare, (line, ValidEvent |
    InputError) pairs made by a second process (intake/parallel.py) while this one appends."""
    if not (isinstance(events, JsonLines) and clock is None):
        return (item for item in items)  # (a generator, as the other: the caller closes it)
    from ..intake import parallel  # (multiprocessing: only for a long input)

    if not parallel.available():
        return (item for item in items)
    first, lines = events.rest()
    following = next(lines, None)
    if following is None:
        return iter(())
    return _numbered(parallel.validated(first, chain((following,), lines), validator))


def _numbered(pairs: Iterator) -> Iterator:
    """(0, pair) for each pair, as `enumerate(read_events(...))` gives them (the number is the
    pair's own line), closing `pairs` when closed."""
    with closing(pairs):
        for pair in pairs:
            yield 0, pair


def _validate(validator: Validator, items: list[tuple[int, object]],
              progress: Callable[[int], None] | None) -> tuple[list[ValidEvent], list[IngestProblem]]:
    """Validate numbered items: dicts, or (line, dict | InputError | ValidEvent) pairs from
    `read_events` or a second process (validated there already)."""
    valid: list[ValidEvent] = []
    errors: list[IngestProblem] = []
    for number, item in items:
        line, raw = item if isinstance(item, tuple) else (number, item)
        if isinstance(raw, InputError):
            errors.append(IngestProblem(line, raw.message))
        elif raw.__class__ is ValidEvent:
            valid.append(raw)
        else:
            try:
                valid.append(validator.validate(raw, line))
            except InputError as exc:
                errors.append(IngestProblem(line, exc.message))
        if progress is not None:
            progress(1)
    return valid, errors


class _Unwritten(Exception):
    """Rolls a streamed batch back; carries what the caller is told."""

    def __init__(self, result: IngestResult):
        super().__init__("unwritten")
        self.result = result


def _event_entry(seq: int, recorded_us: int, event: ValidEvent, derived: dict | None) -> Entry:
    return Entry(seq, EVENT, recorded_us, event.subject, event.subject_kind, event.type, event.occurred_us,
                 event.provider, event.key, event.attributes, None, None, None, event.attributes_json, derived)


@contextmanager
def _no_cyclic_gc():
    """Pause the cyclic garbage collector during bulk work.

    Ingest makes millions of small acyclic objects; the collector would walk them again and
    again (a quarter of the time, measured) and find nothing. Reference counting still frees
    them; the collector runs again afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
