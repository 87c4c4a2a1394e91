"""Decisions over HTTP, batched: one thread decides what has arrived and commits it at once.

A decision is committed before it is answered, and a commit is an fsync. Requests that arrive
while a commit is under way wait for the next one together: the event loop queues each
request and awaits its future; a thread takes everything queued, checks each request on its
own (a bad one fails alone), decides the good ones caller by caller (one commit for each
caller's share) and hands the answers back to the loop in one go. Two such threads: while one
waits for its commit (the fsync), the other decides what arrived meanwhile and queues it for
the next commit (the log keeps the order in which they were decided). The loop never waits
for the disk, and no request costs a thread of its own. A request under an Idempotency-Key
brings its `answer`, which makes its stored response from its decision: the two go into the
same commit.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable

from ..registry.caller import Caller
from ..registry.gateway import Gateway, ServiceDecision
from ..registry.idempotency import Completion
from ..registry.principals import Principal

_MOST = 2_000  # requests decided in one go
THREADS = 2  # one decides what has arrived while the other's commit is on the disk


class DecisionBatcher:
    def __init__(self, gateway: Gateway):
        self._gateway = gateway
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._threads: list[threading.Thread] = []
        self._callers: dict[tuple[str, str, str | None], Caller] = {}
        self._lock = threading.Lock()

    async def decide(self, principal: Principal, ref: str, service: str, kind: str, at, purpose: str | None,
                     answer: Callable[[ServiceDecision], Completion] | None = None) -> ServiceDecision:
        loop = asyncio.get_running_loop()
        future = loop.create_future()
        self._queue.put((loop, future, principal, ref, service, kind, at, purpose, answer))
        if not self._threads:
            self._start()
        return await future

    def _start(self) -> None:
        with self._lock:
            if not self._threads:
                self._threads = [threading.Thread(target=self._run, name=f"socialcredit-decisions-{n}", daemon=True)
                                 for n in range(THREADS)]
                for thread in self._threads:
                    thread.start()

    def close(self) -> None:
        threads, self._threads = self._threads, []
        for _thread in threads:
            self._queue.put(None)  # each ends one thread
        for thread in threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            try:
                while len(batch) < _MOST:
                    item = self._queue.get_nowait()
                    if item is None:
                        self._queue.put(None)  # end after this batch
                        break
                    batch.append(item)
            except queue.Empty:
                pass
            try:
                outcomes = self._decide(batch)
            except BaseException as exc:  # noqa: BLE001 - whatever it is, every request in the batch hears
                outcomes = [exc] * len(batch)  # of it, and the thread lives on for the next batch
            by_loop: dict = {}
            for item, outcome in zip(batch, outcomes):
                by_loop.setdefault(item[0], []).append((item[1], outcome))
            for loop, answers in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_resolve, answers)
                except RuntimeError:  # that loop is closed: nobody is waiting any more
                    pass

    def _caller(self, principal: Principal, purpose: str | None) -> Caller:
        """`principal.caller(purpose)` (which refuses a purpose the audit log cannot hold), made
        once for each principal and purpose that keep coming (a gate sends the same one)."""
        key = (principal.name, principal.role, purpose)
        caller = self._callers.get(key)
        if caller is None:
            caller = principal.caller(purpose)
            if len(self._callers) >= 4096:
                self._callers.clear()
            self._callers[key] = caller
        return caller

    def _decide(self, batch: list) -> list:
        outcomes: list = [None] * len(batch)
        by_caller: dict[Caller, list[tuple[int, object, object]]] = {}
        for index, (_loop, _future, principal, ref, service, kind, at, purpose, answer) in enumerate(batch):
            try:
                request = self._gateway.decision_request(principal, ref, service, kind=kind, at=at)
                caller = self._caller(principal, purpose)
            except BaseException as exc:  # this request's own mistake: it fails alone
                outcomes[index] = exc
                continue
            by_caller.setdefault(caller, []).append((index, request, answer))
        for caller, items in by_caller.items():
            answers = [answer for _index, _request, answer in items]
            try:
                decisions = self._gateway.decide_requests(caller, [request for _index, request, _answer in items],
                                                          answers if any(answers) else None)
            except BaseException as exc:  # the commit failed: every request in it hears of it
                for index, _request, _answer in items:
                    outcomes[index] = exc
                continue
            for (index, _request, _answer), decision in zip(items, decisions):
                outcomes[index] = decision
        return outcomes


def _resolve(answers: list[tuple[asyncio.Future, object]]) -> None:
    for future, outcome in answers:
        if future.done():
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)


__all__ = ["DecisionBatcher"]
