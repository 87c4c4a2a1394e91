"""Decisions: may this subject use this service? Durable before they are answered; replayable.

A decision is committed to the decision log (with its audit record) before `check` returns
it, so a crash never loses a decision a service acted on, and another process can replay it
at once. Each commit is an fsync, so commits are shared: concurrent callers' decisions go
into the database together (group commit), and `check_many` decides a whole batch and
commits it once. A decision asked under an idempotency key has that key's stored response
go into the same commit as the decision (registry/idempotency.py): a crash leaves both or
neither.
"""

from __future__ import annotations

import itertools
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from typing import NamedTuple

from ..errors import InvalidInput, NotFound, excerpt
from ..instants import format_instant, now_us
from ..policy.compiled import Policy
from ..policy.compiled import SERVICE_PATTERN
from ..results import Decision, Replay, Verdict
from ..scoring.compact import compact
from ..scoring.decide import decide
from ..scoring.explain import applied_measure, policy_ref, reason_views
from ..store import DecisionRow, Store
from ..store.principals import IdempotencyTable
from .audit import AuditTrail
from .caller import Caller
from .idempotency import Completion
from .policies import PolicyBook
from .standings import Standings
from .view import LedgerView


_DECISION_ID = re.compile(r"d-[0-9a-f]{10}-[0-9a-f]{8,16}")  # as `_decide` makes them


Answer = Callable[[Decision], Completion]  # a decision's idempotency completion, made from it


class CheckRequest(NamedTuple):
    subject: str  # a pseudonym
    service: str
    at_us: int


class DecisionLog:
    """Appends decisions durably, sharing one commit among concurrent callers.

    A decision row is also the decision's audit record (who asked, in what role, for what
    service, with what purpose): the audit log shows decisions from here. The idempotency
    records answered by decisions are completed in the commit that writes those decisions.

    The first caller to find no commit under way becomes the leader: it takes every row
    queued so far, commits them in one transaction and wakes the others whose rows went in.
    Rows queued while a commit is under way go into the next one.
    """

    def __init__(self, store: Store):
        self._store = store
        self._lock = threading.Lock()
        self._done = threading.Condition(self._lock)
        self._decisions: list[DecisionRow] = []
        self._completions: list[Completion] = []
        self._idempotency = IdempotencyTable(store.db)
        self._next_batch = 0  # the batch that rows queued now will be committed in
        self._committed = -1  # the last batch committed (or failed)
        self._failures: dict[int, BaseException] = {}
        self._writing = False
        self.commits = 0  # how many transactions it took (the benchmark shows commits being shared)

    def append(self, decisions: Sequence[DecisionRow], completions: Sequence[Completion] = ()) -> None:
        """Return once these rows are committed; raise what the commit raised if it failed."""
        self.wait(self.enqueue(decisions, completions))

    def enqueue(self, decisions: Sequence[DecisionRow], completions: Sequence[Completion] = ()) -> int:
        """Queue rows for the next commit (in this order, after every row queued before them),
        and the idempotency records they answer; returns the batch to `wait` for."""
        with self._lock:
            self._decisions.extend(decisions)
            self._completions.extend(completions)
            return self._next_batch

    def wait(self, mine: int) -> None:
        """Return once batch `mine` is committed (leading the commit if none is under way)."""
        with self._lock:
            while self._committed < mine:
                if self._writing:
                    self._done.wait()
                    continue
                self._lead()
            failure = self._failures.get(mine)
        if failure is not None:
            raise failure

    def _lead(self) -> None:
        """Commit everything queued (called with the lock held; releases it while writing)."""
        batch, decisions, completions = self._next_batch, self._decisions, self._completions
        self._decisions, self._completions = [], []
        self._next_batch += 1
        self._writing = True
        self._lock.release()
        failure = None
        try:
            with self._store.db.write() as tx:
                self._store.decisions.insert(tx, decisions)
                if completions:
                    self._idempotency.complete_many(tx, completions, now_us())
            self.commits += 1
        except BaseException as exc:  # every caller in the batch must hear of it, Ctrl-C included
            failure = exc
        finally:
            self._lock.acquire()
            self._writing = False
            self._committed = batch
            if failure is not None:
                self._failures[batch] = failure
                if len(self._failures) > 64:
                    self._failures.pop(min(self._failures))
            self._done.notify_all()


class Decisions:
    def __init__(self, store: Store, policies: PolicyBook, view: LedgerView, standings: Standings,
                 audit: AuditTrail):
        self._store = store
        self._audit = audit
        self._policies = policies
        self._view = view
        self._standings = standings
        self.log = DecisionLog(store)
        # Ids are ordered within a process (the log grows at its end) and unique across them.
        self._prefix = secrets.token_hex(5)
        self._counter = itertools.count(1)
        # Deciding and queueing happen under this lock, so the log keeps the ids' order; the wait
        # for the commit does not, so one caller decides while another's commit is on the disk.
        self._ordering = threading.Lock()

    def check(self, requests: Sequence[CheckRequest], caller: Caller,
              answers: Sequence[Answer | None] | None = None) -> list[Decision]:
        """Decide each request; all of them are in the log when this returns.

        `answers[i]`, if given, makes request i's idempotency completion from its decision: it
        is committed with the decision.
        """
        for request in requests:
            check_service_name(request.service)
        with self._ordering:
            self._view.maybe_sync()
            decisions, rows, completions = [], [], []
            recorded = now_us()
            for index, request in enumerate(requests):
                decision, row = self._decide(request, caller, recorded)
                decisions.append(decision)
                rows.append(row)
                answer = answers[index] if answers else None
                if answer is not None:
                    completions.append(answer(decision))
            batch = self.log.enqueue(rows, completions)
        self.log.wait(batch)
        return decisions

    def _decide(self, request: CheckRequest, caller: Caller, recorded_us: int) -> tuple[Decision, DecisionRow]:
        subject, service, at_us = request
        policy = self._policy_at(at_us)
        size, standing, generation = self._view.lookup(subject)
        if standing is None or not standing.covers(at_us, policy.digest):
            standing, policy, size = self._standings.for_check(subject, at_us, policy, size, generation)
        outcome = decide(policy, standing.measures, service)
        decision_id = f"d-{self._prefix}-{next(self._counter):08x}"
        row = DecisionRow(decision_id, subject, service, at_us, policy.digest, size, outcome.allowed, outcome.effect,
                          ",".join(a.measure_id for a in outcome.applied), recorded_us, caller.principal, caller.role,
                          caller.purpose)
        decision = Decision(
            decision_id, outcome.allowed, outcome.effect, service, format_instant(at_us),
            [applied_measure(policy, a.measure_id, a.until_us) for a in outcome.applied],
            reason_views(policy, outcome.reasons), policy_ref(policy), size,
            standing.score if policy.scored else None, standing.tier,
            policy.knows_service(service), subject,
        )
        return decision, row

    def _policy_at(self, at_us: int) -> Policy:
        # The policy in force at `at`: nearly always the newest, so look no further then.
        if at_us >= self._policies.current_since_us:
            return self._policies.current
        return self._policies.at(at_us)

    def replay(self, decision_id: str, caller: Caller) -> Replay:
        """Recompute a logged decision from the ledger as it was; it must come out the same."""
        row = self._store.decisions.get(decision_id) if _DECISION_ID.fullmatch(decision_id) else None
        if row is None:
            raise NotFound(f"no decision {excerpt(decision_id)} in this registry")
        policy = self._policies.by_digest(row.policy_digest)
        if policy is None:
            self._view.sync()  # activated by another process since this one last looked?
            policy = self._policies.by_digest(row.policy_digest)
        if policy is None:
            raise NotFound(f"decision {decision_id} names a policy this ledger does not hold")
        entries = self._store.ledger.entries_for_subject(row.subject)
        standing = compact(self._standings.engine.standing(policy, entries, row.at_us, row.ledger_size, row.subject))
        outcome = decide(policy, standing.measures, row.service)
        logged = Verdict(row.allowed, row.effect, [m for m in row.measures.split(",") if m])
        replayed = Verdict(outcome.allowed, outcome.effect, [a.measure_id for a in outcome.applied])
        self._audit.record(caller, "replay", row.subject, {"decision_id": decision_id})
        return Replay(decision_id, row.service, format_instant(row.at_us), row.ledger_size, policy_ref(policy),
                      logged, replayed, reason_views(policy, outcome.reasons), logged == replayed)


def check_service_name(service: str) -> None:
    if not isinstance(service, str) or not SERVICE_PATTERN.match(service):
        raise InvalidInput(f"{excerpt(service)} is not a service name (dotted lower-case words, e.g. transport.air)")
