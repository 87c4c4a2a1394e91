"""An idempotency key's stored answer commits with the work it answers, or neither commits.

Registry level, no HTTP: a claim from `Idempotency.begin`, a write given an answer for it,
and failures put in at the last statement of the write's transaction. Whatever fails, no
record is left pending over committed work, and no record is done without its work.
"""

from __future__ import annotations

import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit.registry.decisions import DecisionRow
from socialcredit.registry.idempotency import Claim, Stored
from socialcredit.store.principals import IdempotencyTable

from live import LACIE, NAOMI, populate

JSON = "application/json"
_EXAMPLES = itertools.count()


class Injected(Exception):
    """A failure put in by the test, as a crash would come: inside the write's transaction."""


def _failing(*_args, **_kwargs):
    raise Injected("the process died here")


@pytest.fixture
def registry(make_registry):
    registry = make_registry("nosedive")
    registry.cast = populate(registry)
    return registry


def _principal(registry, role: str):
    return registry.principals.authenticate(registry.cast.keys[role])


def _decisions(registry) -> int:
    with registry.store.db.read() as tx:
        return tx.scalar("SELECT count(*) FROM decisions")


def _record(registry, principal: str, key: str):
    with registry.store.db.read() as tx:
        return registry.idempotency.table.get(tx, principal, key)


def _decide(registry, claim: Claim | None, subject: str = NAOMI):
    venue = _principal(registry, "service")
    request = registry.gateway.decision_request(venue, subject, "venue.entry")
    answer = None if claim is None else (lambda d: claim.completion(Stored(201, JSON, json.dumps(d.to_dict()))))
    return registry.gateway.decide_requests(venue.caller(None), [request], [answer])[0]


def test_a_decision_and_its_stored_answer_commit_together(registry):
    claim = registry.idempotency.begin("venue", "gate-1", "fp-1")
    assert isinstance(claim, Claim)
    decision = _decide(registry, claim)
    # Nothing more is called: a process that died right here has left the record done.
    record = _record(registry, "venue", "gate-1")
    assert record.state == "done" and record.status == 201
    assert json.loads(record.response)["decision_id"] == decision.decision_id
    assert registry.store.decisions.get(decision.decision_id) is not None
    again = registry.idempotency.begin("venue", "gate-1", "fp-1")
    assert again == Stored(201, JSON, record.response)
    assert _decisions(registry) == 1


def test_a_decision_that_fails_in_its_transaction_leaves_neither(registry, monkeypatch):
    claim = registry.idempotency.begin("venue", "gate-2", "fp-2")
    monkeypatch.setattr(IdempotencyTable, "complete_many", _failing)  # after the decision's rows, before the commit
    with pytest.raises(Injected):
        _decide(registry, claim)
    monkeypatch.undo()
    assert _decisions(registry) == 0
    assert _record(registry, "venue", "gate-2").state == "pending"  # a retry takes it over and decides, once


def test_completions_ride_in_the_group_commit(registry):
    log = registry.decisions.log
    claims = [registry.idempotency.begin("venue", f"group-{n}", f"fp-{n}") for n in range(3)]
    rows = [DecisionRow(f"d-{n:010x}-{n:08x}", "1:" + "0" * 32, "venue.entry", 0, "digest", 1, True, "allow", "", 0,
                        "venue", "service", None) for n in range(3)]
    commits = log.commits
    batch = None
    for claim, row in zip(claims, rows):
        batch = log.enqueue([row], [claim.completion(Stored(201, JSON, json.dumps({"decision_id": row.id})))])
    log.wait(batch)
    assert log.commits == commits + 1  # three decisions and their answers: one commit
    for n in range(3):
        record = _record(registry, "venue", f"group-{n}")
        assert record.state == "done" and json.loads(record.response) == {"decision_id": rows[n].id}
        assert registry.store.decisions.get(rows[n].id) is not None


def test_a_rating_and_its_stored_answer_commit_together(registry):
    lacie = _principal(registry, "subject")
    claim = registry.idempotency.begin("lacie", "rate-1", "fp")
    size = registry.size()

    def answer(tx, rating):
        claim.store(tx, Stored(201, JSON, json.dumps(rating.to_dict())))

    rating = registry.gateway.rate(lacie, NAOMI, 4, in_commit=answer)
    record = _record(registry, "lacie", "rate-1")
    assert record.state == "done" and json.loads(record.response)["entry"] == rating.entry == size
    assert registry.size() == size + 1


def test_a_rating_that_fails_in_its_transaction_writes_nothing(registry):
    lacie = _principal(registry, "subject")
    registry.idempotency.begin("lacie", "rate-2", "fp")
    size = registry.size()
    with pytest.raises(Injected):
        registry.gateway.rate(lacie, NAOMI, 4, in_commit=_failing)
    assert registry.size() == size
    assert _record(registry, "lacie", "rate-2").state == "pending"


def test_a_batch_of_events_and_its_submission_and_answer_commit_together_or_not_at_all(registry):
    city = _principal(registry, "provider")
    events = [(n, {"subject": who, "type": "official.penalty", "occurred_at": "2026-01-05T00:00:00Z",
                   "key": f"unit-{n}"}) for n, who in enumerate((NAOMI, LACIE), start=1)]
    size = registry.size()
    with pytest.raises(Injected):
        registry.gateway.submit_events(city, events, in_commit=_failing)
    assert registry.size() == size and registry.gateway.my_submissions(city).submissions == []

    claim = registry.idempotency.begin("city", "batch-1", "fp")

    def answer(tx, submitted):
        claim.store(tx, Stored(200, JSON, json.dumps(submitted[0].to_dict())))

    submission, refused = registry.gateway.submit_events(city, events, in_commit=answer)
    assert refused == 0 and submission.accepted == 2 and registry.size() == size + 2
    stored = json.loads(_record(registry, "city", "batch-1").response)
    assert stored == submission.to_dict()
    assert registry.gateway.submission(city, submission.submission).accepted == 2


def test_a_batch_that_writes_nothing_does_not_answer_in_a_transaction(registry):
    """Its answer is stored afterwards, on its own: `in_commit` is not called, and the
    submission is still recorded."""
    city = _principal(registry, "provider")
    submission, _refused = registry.gateway.submit_events(city, [(1, {"subject": NAOMI, "type": "no.such"})],
                                                          in_commit=_failing)
    assert submission.written is False and submission.rejected == 1
    assert registry.gateway.submission(city, submission.submission).rejected == 1


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(st.tuples(st.integers(0, 2), st.booleans()), min_size=1, max_size=8))
def test_whatever_fails_no_key_is_pending_over_a_decision_nor_done_without_one(registry, monkeypatch, steps):
    """Requests under a few keys, some failing inside their transaction (then released, as a
    server fault is): afterwards a key is done exactly when one decision answers it, and every
    decision logged answers a key."""
    prefix = f"example-{next(_EXAMPLES)}"  # each example's keys its own (hypothesis may run one twice)
    before = _decisions(registry)
    for number, (key, fails) in enumerate(steps):
        key = f"{prefix}-{key}"
        claim = registry.idempotency.begin("venue", key, "fp")
        if isinstance(claim, Stored):
            continue  # the stored answer: nothing more is written
        if fails:
            monkeypatch.setattr(IdempotencyTable, "complete_many", _failing)
        try:
            _decide(registry, claim, NAOMI if number % 2 else LACIE)
        except Injected:
            registry.idempotency.release("venue", key)
        finally:
            monkeypatch.undo()
    answered = set()
    for key in {f"{prefix}-{k}" for k, _ in steps}:
        record = _record(registry, "venue", key)
        assert record is None or record.state == "done"  # never pending: each request ended one way or the other
        if record is not None:
            decision_id = json.loads(record.response)["decision_id"]
            assert registry.store.decisions.get(decision_id) is not None
            answered.add(decision_id)
    assert _decisions(registry) - before == len(answered)
