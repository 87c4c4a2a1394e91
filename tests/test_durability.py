"""A decision is in the log before its answer leaves the registry; concurrent callers share one.

A process is killed (SIGKILL: no cleanup, no flush) right after `check` returned; another
process must find the decision and replay it. Many threads share one registry, checking and
ingesting at once; every decision is logged and replays the same, and every stored standing
equals the fold.
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time

from socialcredit.instants import now_us
from socialcredit.registry import CheckRequest
from socialcredit.scoring.compact import compact
from socialcredit.scoring.fold import fold

from conftest import event

DEFAULTER = "11010519491231002X"
CHECKER = """
import sys, time
from socialcredit.registry import Registry
registry = Registry.open(sys.argv[1], key_file=sys.argv[2])
decision = registry.check(sys.argv[3], "transport.air", at="2026-06-01")
print(decision.decision_id, decision.allowed, flush=True)
time.sleep(60)  # killed here: nothing after the answer may be needed to keep it
"""


def _listed(who: str = DEFAULTER, key: int = 1) -> dict:
    return event(who, "court.judgment_unfulfilled", "2026-03-01T00:00:00Z", key, provider="court",
                 case_id=f"case-{key}", trigger="refuses_to_pay")


def test_a_decision_survives_the_process_killed_right_after_it_answered(make_registry, database_url, tmp_path):
    registry = make_registry("china-judgment-defaulters")
    registry.ingest([_listed()])
    child = subprocess.Popen([sys.executable, "-c", CHECKER, database_url, str(tmp_path / "registry.key"), DEFAULTER],
                             stdout=subprocess.PIPE, text=True)
    try:
        decision_id, allowed = child.stdout.readline().split()
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=30)
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert allowed == "False"
    replay = registry.replay(decision_id)  # this process never saw the decision being made
    assert replay.same is True and replay.logged.allowed is False
    assert registry.store.decisions.get(decision_id).principal == "library"


def test_threads_sharing_one_registry_check_and_ingest_consistently(make_registry):
    registry = make_registry("china-judgment-defaulters")
    people = [f"person-{i}" for i in range(40)]
    registry.ingest([event(p, "admin.penalty", "2026-01-01T00:00:00Z", f"seed-{p}", provider="city",
                           case_id=f"pd-{p}", severity="minor") for p in people[:20]])
    rng = random.Random(5)
    decisions: list = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def ingester(worker: int) -> None:
        for batch in range(5):
            chosen = rng.sample(people, 4)
            events = [event(p, "court.judgment_unfulfilled", f"2026-0{1 + batch}-0{1 + worker}T00:00:00Z",
                            f"w{worker}-b{batch}-{p}", provider="court", case_id=f"c-{worker}-{batch}-{p}",
                            trigger="refuses_to_pay") for p in chosen]
            result = registry.ingest(events)
            assert result.accepted == len(events), result.errors

    def checker(worker: int) -> None:
        for round_ in range(25):
            requests = [CheckRequest(registry.pseudonym(p), "transport.air", now_us()) for p in rng.sample(people, 3)]
            made = registry.check_subjects(requests) if round_ % 2 else \
                [registry.check_subject(r.subject, r.service, r.at_us) for r in requests]
            with lock:
                decisions.extend(made)

    def run(target, worker):
        try:
            target(worker)
        except BaseException as exc:  # reported below, in the test's own thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(ingester, w)) for w in range(3)]
    threads += [threading.Thread(target=run, args=(checker, w)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    assert len(decisions) == 6 * 25 * 3
    assert len({d.decision_id for d in decisions}) == len(decisions)
    for decision in decisions:
        assert registry.replay(decision.decision_id).same is True
    assert registry.verify().ok and registry.size() == 1 + 20 + 3 * 5 * 4
    policy = registry.policy
    now = now_us()
    for person in people:
        subject = registry.pseudonym(person)
        stored = registry.materialized(subject)
        if stored is None:
            continue
        entries = registry.store.ledger.entries_for_subject(subject)
        at = stored.valid_from_us if stored.valid_from_us is not None else now
        assert stored == compact(fold(policy, entries, at, None, subject))
        latest = registry.check_subject(subject, "transport.air", now)
        assert latest.allowed == (not compact(fold(policy, entries, now, None, subject)).measures)


def test_callers_waiting_while_a_commit_is_under_way_share_the_next_one(make_registry):
    registry = make_registry("china-judgment-defaulters")
    registry.ingest([_listed()])
    subject = registry.pseudonym(DEFAULTER)
    log = registry.decisions.log
    insert = registry.store.decisions.insert
    first = threading.Event()

    def slow_first_insert(tx, rows):
        # Hold the first commit open until the seven other callers are queued behind it.
        if not first.is_set():
            first.set()
            deadline = time.monotonic() + 30
            while len(log._decisions) < 7 and time.monotonic() < deadline:
                time.sleep(0.01)
        insert(tx, rows)

    registry.store.decisions.insert = slow_first_insert
    before = log.commits
    leader = threading.Thread(target=registry.check_subject, args=(subject, "transport.air", now_us()))
    leader.start()
    first.wait(10)
    others = [threading.Thread(target=registry.check_subject, args=(subject, "transport.air", now_us()))
              for _ in range(7)]
    for thread in others:
        thread.start()
    for thread in [leader, *others]:
        thread.join(30)
    assert log.commits - before == 2  # the leader's, then one for the seven who waited
    assert len(registry.audit(action="decision", limit=100).entries) == 8
