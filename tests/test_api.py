"""The HTTP service's own behaviour: errors, limits, keys, idempotency, the audit, the CLI as a client.

In-process (FastAPI's TestClient over the app factory) where that shows it, and against a live
`socialcredit serve` where processes matter: revocation seen by every worker, limits shared
through Redis, what the server logs, the CLI's --server mode.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from socialcredit.api import ApiSettings, create_app
from socialcredit.cli import app as cli

from live import LACIE, NAOMI, OPERATOR, Server, bearer, populate

DEFAULTER = "11010519491231002X"


@pytest.fixture
def service(make_registry, database_url):
    """(client, registry, cast) over an in-process app with rate limits off."""
    registry = make_registry("nosedive")
    cast = populate(registry)
    settings = ApiSettings(db=database_url, api_rate_limits={r: 0 for r in ("provider", "service", "subject",
                                                                            "reviewer", "auditor", "admin",
                                                                            "anonymous")})
    with TestClient(create_app(settings, registry)) as client:
        yield client, registry, cast


def _penalty(key: str, who: str = NAOMI) -> dict:
    return {"subject": who, "type": "official.penalty", "occurred_at": "2026-01-05T00:00:00Z", "key": key}


# -- errors ------------------------------------------------------------------------------------


def test_errors_are_problem_json_with_a_one_line_detail(service):
    client, _registry, cast = service
    cases = [
        (client.post("/v1/decisions", content=b"{not json", headers={**bearer(cast.keys["service"]),
                                                                       "Content-Type": "application/json"}), 400),
        (client.post("/v1/decisions", json={"subject": NAOMI, "service": "venue.entry", "extra": 1},
                     headers=bearer(cast.keys["service"])), 422),
        (client.post("/v1/decisions", json={"subject": NAOMI, "service": "NOT A SERVICE"},
                     headers=bearer(cast.keys["service"])), 403),  # outside the grants before anything else
        (client.post("/v1/events", content=b"<xml/>", headers={**bearer(cast.keys["provider"]),
                                                                "Content-Type": "application/xml"}), 415),
        (client.get("/v1/me"), 401),
        (client.get("/v1/nowhere"), 404),
        (client.get(f"/v1/decisions/d-none", headers=bearer(cast.keys["auditor"])), 404),
        (client.get("/v1/subjects/110105194912310021/standing", headers=bearer(cast.keys["auditor"])), 422),
        (client.post("/v1/standings/query", json={"subject": "11010519491231002Y"},
                     headers=bearer(cast.keys["auditor"])), 422),  # a mistyped ID, named as such
    ]
    for response, status in cases:
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["status"] == status and problem["type"].startswith("urn:socialcredit:problem:")
        assert problem["detail"] and "\n" not in problem["detail"] and problem["kind"]
    assert cases[4][0].headers["www-authenticate"].startswith("Bearer")
    assert "110105194912310021" not in cases[7][0].text  # a raw ID put in a URL is not echoed in the detail


def test_a_body_over_the_limit_is_413_before_it_is_parsed(make_registry, database_url):
    registry = make_registry("nosedive")
    cast = populate(registry)
    settings = ApiSettings(db=database_url, api_max_body=4096)
    with TestClient(create_app(settings, registry)) as client:
        big = json.dumps([_penalty(f"k{i}") for i in range(200)]).encode()
        declared = client.post("/v1/events", content=big, headers={**bearer(cast.keys["provider"]),
                                                                    "Content-Type": "application/json"})

        def chunks():
            for start in range(0, len(big), 1000):
                yield big[start:start + 1000]

        streamed = client.post("/v1/events", content=chunks(), headers={**bearer(cast.keys["provider"]),
                                                                         "Content-Type": "application/json"})
    for response in (declared, streamed):
        assert response.status_code == 413 and response.headers["content-type"] == "application/problem+json"
        assert "4096 bytes" in response.json()["detail"]
    assert registry.size() == 3  # the policy and two opt-ins: nothing of the batch


def test_a_batch_over_the_configured_size_is_refused(make_registry, database_url):
    registry = make_registry("nosedive")
    cast = populate(registry)
    with TestClient(create_app(ApiSettings(db=database_url, api_max_batch=5), registry)) as client:
        response = client.post("/v1/events", json=[_penalty(f"k{i}") for i in range(6)],
                               headers=bearer(cast.keys["provider"]))
    assert response.status_code == 422 and "at most 5 events" in response.json()["detail"]


def test_events_as_json_lines_and_skip_invalid_give_the_ingest_result(service):
    client, registry, cast = service
    lines = "\n".join([json.dumps(_penalty("a")), "{broken", json.dumps(_penalty("b")), ""]).encode()
    headers = {**bearer(cast.keys["provider"]), "Content-Type": "application/x-ndjson"}
    refused = client.post("/v1/events", content=lines, headers=headers)
    assert refused.status_code == 422
    assert refused.json()["written"] is False and refused.json()["errors"][0]["line"] == 2
    size = registry.size()
    skipped = client.post("/v1/events?skip_invalid=true", content=lines, headers=headers)
    assert skipped.status_code == 200
    result = skipped.json()
    assert (result["accepted"], result["rejected"], result["written"]) == (2, 1, True)
    assert registry.size() == size + 2
    entry = registry.store.ledger.entry(size)
    assert entry.provider == "city"  # the caller's name, never the body's
    own = client.get(f"/v1/events/submissions/{result['submission']}", headers=bearer(cast.keys["provider"]))
    assert own.json()["accepted"] == 2
    other = registry.principals.add("utility", "provider", grants=["official.*"], caller=OPERATOR).api_key
    assert client.get(f"/v1/events/submissions/{result['submission']}", headers=bearer(other)).status_code == 404


# -- idempotency -------------------------------------------------------------------------------


def test_idempotency_same_key_same_body_replays_and_writes_nothing_more(service):
    client, registry, cast = service
    headers = {**bearer(cast.keys["service"]), "Idempotency-Key": "order-1"}
    first = client.post("/v1/decisions", json={"subject": NAOMI, "service": "venue.entry"}, headers=headers)
    logged = len(registry.audit(action="decision", limit=1000).entries)
    again = client.post("/v1/decisions", json={"subject": NAOMI, "service": "venue.entry"}, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"
    assert len(registry.audit(action="decision", limit=1000).entries) == logged  # no second decision
    different = client.post("/v1/decisions", json={"subject": LACIE, "service": "venue.entry"}, headers=headers)
    assert different.status_code == 422 and "different request" in different.json()["detail"]
    assert len(registry.audit(action="decision", limit=1000).entries) == logged
    # Keys are per principal: another service's "order-1" is its own.
    other = registry.principals.add("club", "service", grants=["venue.*"], caller=OPERATOR).api_key
    theirs = client.post("/v1/decisions", json={"subject": LACIE, "service": "venue.entry"},
                         headers={**bearer(other), "Idempotency-Key": "order-1"})
    assert theirs.status_code == 201 and theirs.json()["decision_id"] != first.json()["decision_id"]


def test_idempotency_keeps_no_api_key_a_retry_is_told_the_principal_is_there(service):
    client, registry, cast = service
    headers = {**bearer(cast.keys["admin"]), "Idempotency-Key": "add-gate-9"}
    body = {"name": "gate-9", "role": "service", "grants": ["venue.*"]}
    first = client.post("/v1/principals", json=body, headers=headers)
    assert first.status_code == 201 and first.json()["api_key"].startswith("sc_")
    with registry.store.db.read() as tx:
        kept = [row[0] for row in tx.all("SELECT response FROM idempotency WHERE response IS NOT NULL")]
    assert kept and not [b for b in kept if first.json()["api_key"] in b or "sc_" in b]  # a hash only, elsewhere
    again = client.post("/v1/principals", json=body, headers=headers)
    assert again.status_code == 409 and again.headers["idempotent-replayed"] == "true"
    assert "gate-9" in again.json()["detail"] and "revoke" in again.json()["detail"]
    assert [p.name for p in registry.principals.list().principals].count("gate-9") == 1  # added once


def test_idempotency_a_request_in_flight_gets_409(service):
    client, registry, cast = service
    body = json.dumps([_penalty("slow")]).encode()
    registry.idempotency.begin("city", "batch-7", _fingerprint(body))  # claimed: this process, in flight
    busy = client.post("/v1/events", content=body, headers={**bearer(cast.keys["provider"]),
                                                            "Content-Type": "application/json",
                                                            "Idempotency-Key": "batch-7"})
    assert busy.status_code == 409 and busy.headers["retry-after"] == "1"
    assert "in flight" in busy.json()["detail"]
    assert all(e.key != "slow" for e in registry.store.ledger.entries_for_subject(registry.pseudonym(NAOMI)))


def test_idempotency_a_dead_owner_is_taken_over(service):
    client, registry, cast = service
    body = json.dumps([_penalty("orphan")]).encode()
    headers = {**bearer(cast.keys["provider"]), "Content-Type": "application/json", "Idempotency-Key": "orphan"}
    idempotency = registry.idempotency
    dead = f"{idempotency.owner.split(':')[0]}:999999999:gone"  # a process on this host that does not run
    with registry.store.db.write() as tx:
        idempotency.table.claim(tx, "city", "orphan", _fingerprint(body), dead, 2**62, 0)
    response = client.post("/v1/events", content=body, headers=headers)
    assert response.status_code == 200 and response.json()["accepted"] == 1


def _fingerprint(body: bytes) -> str:
    """What the service computes for POST /v1/events with this body."""
    from types import SimpleNamespace

    from socialcredit.api.context import fingerprint

    return fingerprint(SimpleNamespace(method="POST", url=SimpleNamespace(path="/v1/events", query="")), body)


# -- keys --------------------------------------------------------------------------------------


def test_a_key_is_hashed_once_per_process_then_checked_by_its_proof(service):
    client, registry, cast = service
    before = registry.principals.argon2_checks
    for _ in range(30):
        assert client.get("/v1/me", headers=bearer(cast.keys["auditor"])).status_code == 200
    assert registry.principals.argon2_checks - before <= 1
    wrong = cast.keys["auditor"][:-4] + "AAAA"
    for _ in range(10):
        assert client.get("/v1/me", headers=bearer(wrong)).status_code == 401
    assert registry.principals.argon2_checks - before <= 2  # a wrong key is not hashed again and again
    stored = registry.principals.table.get("auditor")
    assert stored.key_hash.startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    assert cast.keys["auditor"] not in json.dumps(stored)
    assert cast.keys["auditor"].startswith("sc_") and len(cast.keys["auditor"].split("_", 2)[2]) >= 22


def test_a_revoked_key_stops_working_within_a_second_in_every_worker(make_registry, database_url, tmp_path):
    registry = make_registry("nosedive")
    cast = populate(registry)
    with Server(database_url, tmp_path / "registry.key", tmp_path / "server.log", workers=2,
                env={"SOCIALCREDIT_API_RATE_LIMITS": '{"auditor": 0}'}) as server:
        with httpx.Client(base_url=server.base, headers=bearer(cast.keys["auditor"])) as http:
            for _ in range(20):  # both workers have checked the key and keep its proof
                assert http.get("/v1/me").status_code == 200
            registry.principals.revoke("auditor", caller=OPERATOR)  # another process: this test's
            revoked = time.monotonic()
            time.sleep(1.0)
            statuses = {http.get("/v1/me").status_code for _ in range(20)}
            assert statuses == {401}, statuses
            assert time.monotonic() - revoked < 1.5


# -- rate limits -------------------------------------------------------------------------------


def test_rate_limits_per_principal_answer_429_with_retry_after(make_registry, database_url):
    registry = make_registry("nosedive")
    cast = populate(registry)
    settings = ApiSettings(db=database_url, api_rate_limits={"auditor": 2, "reviewer": 1000},
                           api_burst_seconds=1)
    with TestClient(create_app(settings, registry)) as client:
        statuses = [client.get("/v1/me", headers=bearer(cast.keys["auditor"])).status_code for _ in range(5)]
        limited = client.get("/v1/me", headers=bearer(cast.keys["auditor"]))
        other = client.get("/v1/me", headers=bearer(cast.keys["reviewer"]))
    assert statuses[:2] == [200, 200] and 429 in statuses
    assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
    assert limited.headers["content-type"] == "application/problem+json"
    assert other.status_code == 200  # buckets are per principal


def test_with_several_workers_the_limits_are_shared_through_redis(make_registry, database_url, tmp_path):
    import redis

    try:
        redis.Redis.from_url("redis://127.0.0.1:6379/0", socket_connect_timeout=1).ping()
    except redis.RedisError as exc:
        pytest.fail(f"Redis at 127.0.0.1:6379 is needed (.ci/run starts it): {exc}")
    registry = make_registry("nosedive")
    cast = populate(registry)
    prefix = f"sc-test-{os.getpid()}-{time.monotonic_ns()}"
    with Server(database_url, tmp_path / "registry.key", tmp_path / "server.log", workers=2,
                env={"SOCIALCREDIT_API_RATE_LIMITS": '{"auditor": 4}', "SOCIALCREDIT_API_BURST_SECONDS": "1",
                     "SOCIALCREDIT_REDIS_URL": "redis://127.0.0.1:6379/0"}) as server:
        with httpx.Client(base_url=server.base, headers=bearer(cast.keys["auditor"])) as http:
            started = time.monotonic()
            statuses = [http.get("/v1/me").status_code for _ in range(24)]
            elapsed = time.monotonic() - started
    granted = statuses.count(200)
    # One bucket of 4 refilling at 4/s for both workers together; two private buckets would grant twice that.
    assert granted <= 4 + 4 * elapsed + 1, (granted, elapsed)
    assert 429 in statuses
    assert prefix  # (the buckets' keys expire by themselves in Redis)


# -- busy database -----------------------------------------------------------------------------


def test_a_busy_database_is_a_503_with_retry_after_never_a_500(make_registry, database_url):
    if not database_url.startswith("sqlite"):
        pytest.skip("holding the write lock from outside is shown on SQLite")
    registry = make_registry("nosedive")
    cast = populate(registry)
    registry.store.db.lock_timeout_s = 0.3
    settings = ApiSettings(db=database_url, api_rate_limits={"service": 0})
    blocker = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    with TestClient(create_app(settings, registry)) as client:
        blocker.execute("BEGIN IMMEDIATE")
        try:
            response = client.post("/v1/decisions", json={"subject": NAOMI, "service": "venue.entry"},
                                   headers=bearer(cast.keys["service"]))
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert response.status_code == 503 and response.headers["retry-after"]
        assert response.headers["content-type"] == "application/problem+json"
        again = client.post("/v1/decisions", json={"subject": NAOMI, "service": "venue.entry"},
                            headers=bearer(cast.keys["service"]))
        assert again.status_code == 201


# -- the audit ---------------------------------------------------------------------------------


def test_every_read_and_decision_over_http_is_audited_with_principal_role_and_purpose(service):
    client, registry, cast = service
    client.post("/v1/decisions", json={"subject": NAOMI, "service": "venue.entry"},
                headers={**bearer(cast.keys["service"]), "Audit-Purpose": "door 3"})
    client.post("/v1/standings/query", json={"subject": NAOMI},
                headers={**bearer(cast.keys["auditor"]), "Audit-Purpose": "complaint 17"})
    client.get("/v1/me/standing", headers=bearer(cast.keys["other_subject"]))
    reads = client.get("/v1/me/reads", headers=bearer(cast.keys["other_subject"])).json()["entries"]
    seen = {(r["principal"], r["role"], r["action"], r["purpose"]) for r in reads}
    assert ("venue", "service", "decision", "door 3") in seen
    assert ("auditor", "auditor", "standing", "complaint 17") in seen
    assert ("naomi", "subject", "standing", None) in seen
    assert all(r["subject"] == cast.pseudonyms[NAOMI] for r in reads)
    decisions = client.get("/v1/me/decisions", headers=bearer(cast.keys["other_subject"])).json()["entries"]
    assert [d["detail"]["service"] for d in decisions] == ["venue.entry"]
    log = client.get(f"/v1/audit?subject={cast.pseudonyms[NAOMI]}&principal=auditor",
                     headers=bearer(cast.keys["auditor"])).json()["entries"]
    assert {r["action"] for r in log} == {"standing"}
    changes = registry.audit(action="principal.add", limit=100).entries
    assert {r.detail["name"] for r in changes} >= {"admin", "auditor", "city", "venue", "lacie", "naomi"}
    assert registry.audit(action="principal.revoke", limit=10).entries[0].detail["name"] == "former-auditor"


def test_a_subject_rates_as_itself_only(service):
    client, registry, cast = service
    rated = client.post("/v1/ratings", json={"subject": NAOMI, "stars": 5, "interaction": "lunch"},
                        headers=bearer(cast.keys["subject"]))
    assert rated.status_code == 201, rated.text
    entry = registry.store.ledger.entry(rated.json()["entry"])
    assert entry.attributes["rater"] == cast.pseudonyms[LACIE] and entry.subject == cast.pseudonyms[NAOMI]
    as_other = client.post("/v1/ratings", json={"subject": LACIE, "stars": 1, "interaction": "x", "rater": NAOMI},
                           headers=bearer(cast.keys["subject"]))
    assert as_other.status_code == 403
    itself = client.post("/v1/ratings", json={"subject": LACIE, "stars": 5, "interaction": "y"},
                         headers=bearer(cast.keys["subject"]))
    assert itself.status_code == 422


def test_an_activation_with_lint_errors_is_refused_unless_forced_and_the_force_is_audited(service):
    client, registry, cast = service
    from socialcredit.policy.load import load_policy

    text = load_policy("nosedive").text.replace(
        "An official's penalty: one point docked, negative ratings count double", "Attendance at a religious service")
    headers = bearer(cast.keys["admin"])
    linted = client.post("/v1/policies/lint", json={"text": text}, headers=headers).json()
    assert linted["summary"]["error"] == 1 and linted["findings"][0]["severity"]
    refused = client.post("/v1/policies", json={"text": text}, headers=headers)
    assert refused.status_code == 422 and "lint error" in refused.json()["detail"]
    forced = client.post("/v1/policies", json={"text": text, "force": True, "reason": "a study"}, headers=headers)
    assert forced.status_code == 201 and forced.json()["forced"] == "a study"
    activation = registry.audit(action="activate", limit=5).entries[0]
    assert activation.principal == "admin" and activation.detail["forced"] == "a study"
    listed = client.get("/v1/policies").json()["policies"]
    assert listed[-1]["current"] is True and listed[-1]["forced"] == "a study"
    shown = client.get(f"/v1/policies/{listed[-1]['policy']['digest']}").json()
    assert shown["text"] == text and shown["lint"]["summary"]["error"] == 1


def test_the_openapi_document_and_the_docs_are_served(service):
    client, _registry, _cast = service
    document = client.get("/v1/openapi.json").json()
    assert document["info"]["title"] == "socialcredit"
    assert all(path.startswith("/v1/") or path in ("/healthz", "/readyz") for path in document["paths"])
    assert client.get("/v1/docs").status_code == 200
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"


# -- the live server: logs, and the CLI as a client ----------------------------------------------


def test_the_server_logs_no_raw_reference_and_the_cli_talks_to_it(make_registry, database_url, tmp_path):
    registry = make_registry("china-judgment-defaulters")
    court = registry.principals.add("court", "provider", grants=["court.*"], caller=OPERATOR).api_key
    rail = registry.principals.add("rail", "service", grants=["transport.*"], caller=OPERATOR).api_key
    auditor = registry.principals.add("auditor", "auditor", caller=OPERATOR).api_key
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps({"subject": DEFAULTER, "type": "court.judgment_unfulfilled",
                                  "occurred_at": "2026-03-01T00:00:00Z", "key": "case-1",
                                  "attributes": {"case_id": "c-1", "trigger": "refuses_to_pay"}}) + "\n"
                      + "{not json\n")
    log = tmp_path / "server.log"
    runner = CliRunner()
    env = {"SOCIALCREDIT_DB": None, "SOCIALCREDIT_KEY": None, "SOCIALCREDIT_KEY_FILE": None,
           "SOCIALCREDIT_SERVER": None, "SOCIALCREDIT_API_KEY": None, "COLUMNS": "1000"}

    def run(*args):
        return runner.invoke(cli, list(args), env=env)

    with Server(database_url, tmp_path / "registry.key", log, env={"SOCIALCREDIT_API_RATE_LIMITS": "{}"},
                log_level="info") as server:
        remote = ("--server", server.base, "--api-key")
        # A bad line refuses the file, as locally: the same words, exit 2.
        bad = run("ingest", str(events), *remote, court)
        assert bad.exit_code == 2 and "line 2: not valid JSON" in bad.output
        events.write_text(events.read_text().splitlines()[0] + "\n")
        good = run("ingest", str(events), *remote, court)
        assert good.exit_code == 0 and "Accepted 1 new, 0 duplicate, 0 rejected; ledger size 2." in good.output
        denied = run("check", DEFAULTER, "transport.rail.high_speed", "--at", "2026-06-01", *remote, rail)
        assert denied.exit_code == 3 and "DENIED transport.rail.high_speed" in denied.output
        wrong_key = run("check", DEFAULTER, "transport.air", *remote, court)
        assert wrong_key.exit_code == 2 and "is for a service key" in wrong_key.output
        remote_standing = run("standing", DEFAULTER, "--at", "2026-06-01", "--json", *remote, auditor)
        httpx.get(server.base + f"/v1/ledger/checkpoint?subject={DEFAULTER}")  # a raw ID in a query: not logged
        httpx.post(server.base + "/v1/standings/query", json={"subject": DEFAULTER}, headers=bearer(auditor))
        unreachable = run("standing", DEFAULTER, "--server", "http://127.0.0.1:9", "--api-key", auditor)
        assert unreachable.exit_code == 2 and "cannot reach" in unreachable.output
    local_standing = run("--db", database_url, "--key-file", str(tmp_path / "registry.key"), "standing", DEFAULTER,
                         "--at", "2026-06-01", "--json")
    assert remote_standing.exit_code == local_standing.exit_code == 0
    assert json.loads(remote_standing.stdout) == json.loads(local_standing.stdout)
    text = log.read_text()
    assert DEFAULTER not in text and DEFAULTER.lower() not in text
    assert "POST /v1/standings/query 200" in text  # the access log names the route


def test_the_access_log_follows_the_log_level(make_registry, database_url, tmp_path):
    registry = make_registry("china-judgment-defaulters")
    auditor = registry.principals.add("auditor", "auditor", caller=OPERATOR).api_key
    registry.close()
    written = {}
    for level in ("info", "warning"):
        log = tmp_path / f"{level}.log"
        with Server(database_url, tmp_path / "registry.key", log, log_level=level) as server:
            assert httpx.post(server.base + "/v1/standings/query", json={"subject": DEFAULTER},
                              headers=bearer(auditor)).status_code == 200
            assert httpx.post(server.base + "/v1/decisions", json={"subject": DEFAULTER, "service": "transport.air"},
                              headers=bearer(auditor)).status_code == 403  # the lean path logs as well
        written[level] = log.read_text()
    assert "POST /v1/standings/query 200" in written["info"] and "POST /v1/decisions 403" in written["info"]
    assert "POST /v1" not in written["warning"]  # at warning, as uvicorn's own: no line a request


def test_concurrent_decisions_are_batched_and_a_bad_one_fails_alone(service):
    import threading

    client, registry, cast = service
    answers: dict[int, object] = {}

    def ask(n: int) -> None:
        body = {"subject": NAOMI if n % 2 else LACIE, "service": "venue.entry"}
        if n == 7:
            body = {"subject": "not-an-organization", "kind": "organization", "service": "venue.entry"}
        answers[n] = client.post("/v1/decisions", json=body, headers=bearer(cast.keys["service"]))

    before = registry.decisions.log.commits
    threads = [threading.Thread(target=ask, args=(n,)) for n in range(24)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert answers[7].status_code == 422
    made = [answers[n].json()["decision_id"] for n in answers if n != 7]
    assert all(answers[n].status_code == 201 for n in answers if n != 7)
    assert len(set(made)) == 23
    logged = {r.detail["decision_id"] for r in registry.audit(action="decision", limit=1000).entries}
    assert set(made) <= logged
    assert registry.decisions.log.commits - before <= 23
    for decision_id in made[:3]:
        assert registry.replay(decision_id).same


def test_a_list_the_policy_marks_public_is_shown_without_a_key(make_registry, database_url):
    from socialcredit.policy.load import load_policy, parse_policy

    text = load_policy("china-judgment-defaulters").text
    marked = text.replace('id = "judgment-defaulters"\n', 'id = "judgment-defaulters"\npublic = true\n', 1)
    assert marked != text
    registry = make_registry(parse_policy(marked, source="test"))
    registry.ingest([{"subject": DEFAULTER, "type": "court.judgment_unfulfilled", "occurred_at": "2026-03-01T00:00:00Z",
                      "provider": "court", "key": "c1", "attributes": {"case_id": "(2026)J1", "trigger": "refuses_to_pay"}},
                     {"subject": "alice", "type": "admin.penalty", "occurred_at": "2026-03-01T00:00:00Z",
                      "provider": "city", "key": "p1", "attributes": {"case_id": "pd-1", "severity": "minor"}}])
    with TestClient(create_app(ApiSettings(db=database_url), registry)) as client:
        lists = client.get("/v1/lists").json()["lists"]
        shown = client.get("/v1/lists/judgment-defaulters").json()
        hidden = client.get("/v1/lists/rail-dishonest")
    assert [item["id"] for item in lists] == ["judgment-defaulters"]
    assert [(item["subject"], item["case"]) for item in shown["listings"]] == [(registry.pseudonym(DEFAULTER), "(2026)J1")]
    assert DEFAULTER not in json.dumps(shown)
    assert hidden.status_code == 404
