"""A server that dies between commit points leaves no write done twice under one Idempotency-Key.

For each write the API takes under a key (a decision, a rating, a batch of events, a
principal, a policy activation) a server process is made to die (os._exit: no cleanup, no
flush) at one of two moments of the request:

    in the transaction   after the work's rows are written, before they commit
    after the commit     the work's method has returned; the answer is not yet sent

Then a server without the fault gets the same request under the same key. Afterwards the
work is there exactly once: died in the transaction, the retry does it (and a second retry
gets its answer back); died after the commit, the retry gets the stored answer
(Idempotent-Replayed: true) and writes nothing, and that answer names what was written.

The fault is put in by the test (it wraps a method in the server process before uvicorn
starts), never by the service's own code.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
import pytest

from live import NAOMI, bearer, clean_env, free_port, populate

SERVER = r"""
import importlib, os, sys
import uvicorn

port, moment, target = sys.argv[1], sys.argv[2], sys.argv[3]
if moment != "none":
    module_name, _, attribute = target.partition(":")
    owner_name, _, method = attribute.rpartition(".")
    owner = importlib.import_module(module_name)
    for part in owner_name.split("."):
        owner = getattr(owner, part)
    original = getattr(owner, method)

    def dying(*args, **kwargs):
        if moment == "in-transaction":
            os._exit(137)
        original(*args, **kwargs)
        os._exit(137)

    setattr(owner, method, dying)
uvicorn.run("socialcredit.api:create_app", factory=True, host="127.0.0.1", port=int(port), log_level="warning",
            access_log=False)
"""

# Called in the work's own transaction, once its rows are written: dying here is dying before the commit.
IN_TRANSACTION = "socialcredit.store.principals:IdempotencyTable.complete_many"


@dataclass(frozen=True)
class Write:
    role: str  # whose key sends it (a principal of `populate`)
    path: str
    body: object
    status: int
    after_commit: str  # the method that returns once the work is committed
    count: str  # SQL: how many of the things this write makes are stored
    made: int  # how many one request makes
    names_what_was_written: Callable  # (registry, answer, base) -> bool
    replayed: int | None = None  # the status a replay is given, when it is not `status`


def replay_status(write: Write) -> int:
    return write.replayed or write.status


def _decision_logged(registry, answer, base) -> bool:
    row = registry.store.decisions.get(answer["decision_id"])
    return row is not None and row.principal == "venue" and row.allowed == answer["allowed"]


def _rating_written(registry, answer, base) -> bool:
    entry = registry.store.ledger.entry(answer["entry"])
    return entry is not None and entry.type == "peer.rating" and entry.attributes["stars"] == 4


def _events_written(registry, answer, base) -> bool:
    row = registry.gateway.submissions.get(answer["submission"])
    return answer["accepted"] == 3 and row is not None and row.principal == "city"


def _key_works(registry, answer, base) -> bool:
    if "api_key" not in answer:  # a replay: the key is not kept, so the answer says the principal is there
        return answer["status"] == 409 and "gate-7" in answer["detail"] and "sc_" not in json.dumps(answer)
    me = httpx.get(base + "/v1/me", headers=bearer(answer["api_key"]), timeout=10)
    return me.status_code == 200 and me.json()["name"] == "gate-7"


def _activation_written(registry, answer, base) -> bool:
    entry = registry.store.ledger.entry(answer["entry"])
    return entry is not None and entry.kind == "policy"


WRITES = {
    "decision": Write("service", "/v1/decisions", {"subject": NAOMI, "service": "venue.entry"}, 201,
                      "socialcredit.registry.decisions:DecisionLog._lead",
                      "SELECT count(*) FROM decisions WHERE principal = 'venue'", 1, _decision_logged),
    # No interaction named: the rating's own key is made from the time, so only the
    # Idempotency-Key tells a retry from a second rating.
    "rating": Write("subject", "/v1/ratings", {"subject": NAOMI, "stars": 4}, 201,
                    "socialcredit.registry.ratings:Ratings.rate_as",
                    "SELECT count(*) FROM entries WHERE type = 'peer.rating'", 1, _rating_written),
    "events": Write("provider", "/v1/events",
                    [{"subject": NAOMI, "type": "official.penalty", "occurred_at": "2026-01-05T00:00:00Z",
                      "key": f"crash-{n}"} for n in range(3)], 200,
                    "socialcredit.registry.gateway:Gateway.submit_events",
                    "SELECT count(*) FROM entries WHERE provider = 'city'", 3, _events_written),
    "principal": Write("admin", "/v1/principals", {"name": "gate-7", "role": "service", "grants": ["venue.*"]}, 201,
                       "socialcredit.registry.principals:Principals.add",
                       "SELECT count(*) FROM principals WHERE name = 'gate-7'", 1, _key_works, replayed=409),
    "activation": Write("admin", "/v1/policies", {"pack": "nosedive"}, 201,
                        "socialcredit.registry:Registry.activate",
                        "SELECT count(*) FROM entries WHERE kind = 'policy'", 1, _activation_written),
}


class Process:
    """One server process (this test's own child), with a fault or without."""

    def __init__(self, env: dict[str, str], log, moment: str = "none", target: str = "-"):
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        with open(log, "ab") as stream:
            self.process = subprocess.Popen([sys.executable, "-c", SERVER, str(self.port), moment, target],
                                            stdout=stream, stderr=stream, env=env)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"a server exited with {self.process.returncode} before it was ready")
            try:
                if httpx.get(self.base + "/readyz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("a server was not ready in 60 s")

    def died(self) -> int:
        """Its exit status, once it is gone and reaped (a zombie's pid would still look alive)."""
        return self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


def _count(registry, write: Write) -> int:
    with registry.store.db.read() as tx:
        return tx.scalar(write.count)


def _post(base: str, write: Write, key: str, idempotency_key: str) -> httpx.Response:
    return httpx.post(base + write.path, json=write.body, timeout=30,
                      headers={**bearer(key), "Idempotency-Key": idempotency_key})


@pytest.mark.parametrize("moment", ["in-transaction", "after-commit"])
@pytest.mark.parametrize("name", sorted(WRITES))
def test_a_write_dying_between_commit_points_is_done_once(make_registry, database_url, tmp_path, name, moment):
    write = WRITES[name]
    registry = make_registry("nosedive")
    cast = populate(registry)
    key = cast.keys[write.role]
    env = clean_env(SOCIALCREDIT_DB=database_url, SOCIALCREDIT_KEY_FILE=str(tmp_path / "registry.key"),
                    SOCIALCREDIT_API_RATE_LIMITS='{"admin": 0, "service": 0, "subject": 0, "provider": 0}')
    log = tmp_path / "servers.log"
    before = _count(registry, write)

    faulty = Process(env, log, moment, IN_TRANSACTION if moment == "in-transaction" else write.after_commit)
    try:
        with pytest.raises(httpx.HTTPError):  # it died before it answered
            _post(faulty.base, write, key, "retry-me")
    finally:
        assert faulty.died() == 137, log.read_text()[-2000:]
    registry.view.sync()
    assert _count(registry, write) == before + (0 if moment == "in-transaction" else write.made)

    server = Process(env, log)
    try:
        retry = _post(server.base, write, key, "retry-me")
        assert _count(registry, write) == before + write.made  # exactly once
        assert retry.status_code == (replay_status(write) if moment == "after-commit" else write.status), retry.text[:500]
        assert retry.headers.get("idempotent-replayed") == ("true" if moment == "after-commit" else None)
        assert write.names_what_was_written(registry, retry.json(), server.base)
        again = _post(server.base, write, key, "retry-me")
        assert again.status_code == replay_status(write) and again.headers.get("idempotent-replayed") == "true"
        if moment == "after-commit":
            assert again.content == retry.content
        assert _count(registry, write) == before + write.made
    finally:
        server.stop()
    assert registry.verify().ok
