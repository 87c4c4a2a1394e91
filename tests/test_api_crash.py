"""kill -9 of the server during event submissions, 50 times (10 more on PostgreSQL).

Each trial starts a server process, sends a batch of 500 events under an Idempotency-Key,
and kills the server (SIGKILL: no cleanup, no flush) at a random moment: while the body is
read, while the events are checked, during the transaction or after the answer. Every fifth
trial is killed just after its answer, and times the submission; the others' moments are
drawn within that time, so both kinds of trial happen however loaded the machine is. Then a new
server starts and the same submission is sent again with the same key, until it completes.

Afterwards: every event of every submission that got a 2xx is in the ledger, none is in
twice, the sequence has no gap, `verify` passes, and a retry of a submission that had been
answered gets the stored answer back.

Server processes are forked from one that has already imported the service, so a trial
costs a fork and an app's startup rather than a Python's.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time

import httpx

from live import OPERATOR, bearer, clean_env, free_port

TRIALS = {"sqlite": 50, "postgresql": 10}  # PostgreSQL: fewer, to keep the suite short (the same paths)
EVENTS = 500

ZYGOTE = r"""
import os, signal, sys
import uvicorn
import socialcredit.api  # imported once, before forking
log = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
for line in sys.stdin:
    command, *args = line.split()
    if command == "start":
        pid = os.fork()
        if pid == 0:
            os.dup2(log, 1)
            os.dup2(log, 2)
            os.close(0)
            uvicorn.run("socialcredit.api:create_app", factory=True, host="127.0.0.1", port=int(args[0]),
                        log_level="warning", access_log=False)
            os._exit(0)
        print(pid, flush=True)
    elif command == "kill":
        pid = int(args[0])
        os.kill(pid, int(args[1]))
        os.waitpid(pid, 0)  # reaped: no zombie left to look alive
        print("gone", flush=True)
"""


class Zygote:
    def __init__(self, env: dict[str, str], log):
        self.process = subprocess.Popen([sys.executable, "-c", ZYGOTE, str(log)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True, env=env)

    def _ask(self, line: str) -> str:
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def start(self) -> tuple[int, str]:
        port = free_port()
        pid = int(self._ask(f"start {port}"))
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    return pid, base
            except httpx.HTTPError:
                time.sleep(0.02)
        raise RuntimeError("a forked server did not become ready")

    def kill(self, pid: int, signal_number: int = 9) -> None:
        assert self._ask(f"kill {pid} {signal_number}") == "gone"

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)
        self.process.stdout.close()


def _batch(trial: int) -> list[dict]:
    return [{"subject": f"resident{(trial * 7 + i) % 300}", "type": "official.penalty",
             "occurred_at": "2026-01-05T00:00:00Z", "key": f"t{trial}-e{i}", "attributes": {"reason": "litter"}}
            for i in range(EVENTS)]


def test_kill_9_during_submissions_loses_nothing_and_doubles_nothing(make_registry, database_url, tmp_path):
    registry = make_registry("nosedive")
    key = registry.principals.add("city", "provider", grants=["official.*"], caller=OPERATOR).api_key
    env = clean_env(SOCIALCREDIT_DB=database_url, SOCIALCREDIT_KEY_FILE=str(tmp_path / "registry.key"),
                    SOCIALCREDIT_API_RATE_LIMITS='{"provider": 0}')
    zygote = Zygote(env, tmp_path / "servers.log")
    trials = TRIALS["sqlite" if database_url.startswith("sqlite") else "postgresql"]
    rng = random.Random(8)
    answered_then_killed = completed_on_retry = 0
    try:
        pid, base = zygote.start()
        for trial in range(trials):
            body = _batch(trial)
            headers = {**bearer(key), "Idempotency-Key": f"trial-{trial}"}
            first: dict = {}

            def submit():
                try:
                    response = httpx.post(base + "/v1/events", json=body, headers=headers, timeout=30)
                    first["status"], first["body"] = response.status_code, response.json()
                except httpx.HTTPError as exc:
                    first["error"] = exc

            sender = threading.Thread(target=submit)
            started = time.monotonic()
            sender.start()
            if trial % 5 == 0:
                # Killed right after its answer: how long a submission takes on this machine
                # now, which the next trials' random moments are drawn within.
                sender.join(30)
                typical = time.monotonic() - started
            else:
                time.sleep(rng.uniform(0.0, 1.2 * typical))
            zygote.kill(pid)
            sender.join(30)
            pid, base = zygote.start()
            for _attempt in range(200):
                retry = httpx.post(base + "/v1/events", json=body, headers=headers, timeout=30)
                if retry.status_code != 409:
                    break
                time.sleep(0.05)  # the killed request's record: taken over once its owner is seen gone
            assert retry.status_code == 200, (trial, retry.status_code, retry.text[:300])
            if first.get("status") == 200:
                answered_then_killed += 1
                assert retry.headers.get("idempotent-replayed") == "true", trial
                assert retry.json() == first["body"], trial
            else:
                completed_on_retry += 1
        zygote.kill(pid, 15)
    finally:
        zygote.close()
    assert registry.size() == 1 + trials * EVENTS
    with registry.store.db.read() as tx:
        seqs = [row[0] for row in tx.all("SELECT seq FROM entries ORDER BY seq")]
        keys = tx.all("SELECT provider, key, count(*) FROM entries WHERE kind = 'event' GROUP BY provider, key "
                      "HAVING count(*) > 1")
        stored = {row[0] for row in tx.all("SELECT key FROM entries WHERE provider = 'city'")}
    assert seqs == list(range(len(seqs)))  # gapless
    assert keys == []  # none twice
    assert stored == {f"t{t}-e{i}" for t in range(trials) for i in range(EVENTS)}
    assert registry.verify().ok
    # Both kinds of trial happened: killed before the answer, and after it.
    print(f"{answered_then_killed} answered before the kill, {completed_on_retry} completed on the retry")
    assert answered_then_killed + completed_on_retry == trials
    assert completed_on_retry > 0 and answered_then_killed > 0
