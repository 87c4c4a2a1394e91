"""The lean POST /v1/decisions (api/lean.py) answers exactly as the full FastAPI path does.

Each request goes once through the lean path and once through the full one (the app's
`lean_decisions` switch); the answers must be the same: the same status, the same headers
that matter, a problem+json body byte for byte, and a decision's JSON with the same fields in
the same order and the same values (but its own id and time). Each decision is in the log,
with its audit fields, when its answer arrives.
"""

from __future__ import annotations

import json
import logging
import re

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings, strategies as st

from socialcredit.api import ApiSettings, create_app
from socialcredit.api.lean import plain_body
from socialcredit.api.models import DecisionRequest

from live import LACIE, NAOMI, bearer, populate

NO_LIMITS = {r: 0 for r in ("provider", "service", "subject", "reviewer", "auditor", "admin", "anonymous")}
JSON_TYPE = {"Content-Type": "application/json"}


@pytest.fixture
def service(make_registry, database_url):
    registry = make_registry("nosedive")
    cast = populate(registry)
    with TestClient(create_app(ApiSettings(db=database_url, api_rate_limits=NO_LIMITS), registry)) as client:
        yield client, registry, cast


def _both(client, body: bytes, headers: dict[str, str]):
    answers = []
    for lean in (True, False):
        client.app.lean_decisions = lean
        answers.append(client.post("/v1/decisions", content=body, headers=headers))
    client.app.lean_decisions = True
    return answers


def _same(lean, full) -> None:
    assert lean.status_code == full.status_code, (lean.text, full.text)
    assert lean.headers.get("content-type") == full.headers.get("content-type")
    for header in ("www-authenticate", "retry-after"):
        assert lean.headers.get(header) == full.headers.get(header)
    if lean.status_code == 201:
        a, b = lean.json(), full.json()
        assert list(a) == list(b)
        assert a["decision_id"] != b["decision_id"]
        assert {k: v for k, v in a.items() if k not in ("decision_id", "at")} == \
               {k: v for k, v in b.items() if k not in ("decision_id", "at")}
        assert lean.headers["location"] == f"/v1/decisions/{a['decision_id']}"
        assert full.headers["location"] == f"/v1/decisions/{b['decision_id']}"
        assert lean.headers["content-length"] == str(len(lean.content))
    else:
        assert lean.content == full.content  # problem+json, byte for byte


GOOD = {"subject": NAOMI, "service": "venue.entry"}


def _cases(cast) -> list[tuple[str, bytes, dict[str, str]]]:
    key = bearer(cast.keys["service"])
    good = json.dumps(GOOD).encode()
    return [
        ("plain", good, {**key, **JSON_TYPE}),
        ("every field", json.dumps({**GOOD, "kind": "person", "at": "2026-06-01"}).encode(), {**key, **JSON_TYPE}),
        ("an organization", json.dumps({**GOOD, "subject": "91350100M000100Y43", "kind": "organization"}).encode(),
         {**key, **JSON_TYPE}),
        ("at null", json.dumps({**GOOD, "at": None}).encode(), {**key, **JSON_TYPE}),
        ("a purpose", good, {**key, **JSON_TYPE, "Audit-Purpose": "door 3"}),
        ("a charset", good, {**key, "Content-Type": "application/json; charset=utf-8"}),
        ("a non-ASCII reference of 200 characters", json.dumps({**GOOD, "subject": "é" * 200},
                                                               ensure_ascii=False).encode(), {**key, **JSON_TYPE}),
        ("UTF-16", json.dumps(GOOD).encode("utf-16"), {**key, **JSON_TYPE}),
        ("not JSON", b"{not json", {**key, **JSON_TYPE}),
        ("not UTF-8", b'{"subject": "\xff", "service": "venue.entry"}', {**key, **JSON_TYPE}),
        ("an array", b"[1, 2]", {**key, **JSON_TYPE}),
        ("empty", b"", {**key, **JSON_TYPE}),
        ("an unknown field", json.dumps({**GOOD, "extra": 1}).encode(), {**key, **JSON_TYPE}),
        ("no service", json.dumps({"subject": NAOMI}).encode(), {**key, **JSON_TYPE}),
        ("a reference too long", json.dumps({**GOOD, "subject": "x" * 201}).encode(), {**key, **JSON_TYPE}),
        ("an empty reference", json.dumps({**GOOD, "subject": ""}).encode(), {**key, **JSON_TYPE}),
        ("a number for a reference", json.dumps({**GOOD, "subject": 12}).encode(), {**key, **JSON_TYPE}),
        ("a bad kind", json.dumps({**GOOD, "kind": "robot"}).encode(), {**key, **JSON_TYPE}),
        ("a null kind", json.dumps({**GOOD, "kind": None}).encode(), {**key, **JSON_TYPE}),
        ("a bad at", json.dumps({**GOOD, "at": "yesterday"}).encode(), {**key, **JSON_TYPE}),
        ("an at too long", json.dumps({**GOOD, "at": "2" * 41}).encode(), {**key, **JSON_TYPE}),
        ("a number for at", json.dumps({**GOOD, "at": 20260601}).encode(), {**key, **JSON_TYPE}),
        ("a bad service name", json.dumps({**GOOD, "service": "NOT A SERVICE"}).encode(), {**key, **JSON_TYPE}),
        ("a service outside the grants", json.dumps({**GOOD, "service": "housing.rent"}).encode(),
         {**key, **JSON_TYPE}),
        ("a purpose the audit log cannot hold", good, {**key, **JSON_TYPE, "Audit-Purpose": b"door\x853"}),
        ("a purpose too long", good, {**key, **JSON_TYPE, "Audit-Purpose": "p" * 201}),
        ("text/plain", good, {**key, "Content-Type": "text/plain"}),
        ("no content type", good, key),
        ("no key", good, JSON_TYPE),
        ("a Basic key", good, {"Authorization": "Basic abc", **JSON_TYPE}),
        ("a malformed key", good, {**bearer("sc_nope"), **JSON_TYPE}),
        ("an auditor's key", good, {**bearer(cast.keys["auditor"]), **JSON_TYPE}),
        ("a subject's key", good, {**bearer(cast.keys["subject"]), **JSON_TYPE}),
    ]


def test_the_lean_path_answers_as_the_full_one(service):
    client, registry, cast = service
    for name, body, headers in _cases(cast):
        lean, full = _both(client, body, headers)
        try:
            _same(lean, full)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


def test_unknown_and_revoked_keys_are_refused_alike(service):
    """A refused key is remembered (the next try says so without another Argon2 hash), so each
    path gets keys of its own; the answers differ only in the key's id."""
    client, registry, cast = service
    from live import OPERATOR

    def revoked(name):
        key = registry.principals.add(name, "service", grants=["venue.*"], caller=OPERATOR).api_key
        registry.principals.revoke(name, caller=OPERATOR)
        return key

    for keys in (("sc_0123456789abcdef_" + "A" * 43, "sc_fedcba9876543210_" + "A" * 43),
                 (revoked("gone-1"), revoked("gone-2"))):
        ids = [key.split("_")[1] for key in keys]
        for attempt in range(2):  # the first refusal, then the remembered one
            answers = []
            for lean, key in zip((True, False), keys):
                client.app.lean_decisions = lean
                answers.append(client.post("/v1/decisions", json=GOOD, headers=bearer(key)))
            client.app.lean_decisions = True
            lean_answer, full_answer = answers
            assert lean_answer.status_code == full_answer.status_code == 401
            assert lean_answer.headers["www-authenticate"] == full_answer.headers["www-authenticate"]
            assert lean_answer.content.replace(ids[0].encode(), ids[1].encode()) == full_answer.content


def test_a_lean_decision_is_logged_with_its_audit_fields_before_it_is_answered(service, caplog):
    client, registry, cast = service
    caplog.set_level(logging.INFO, logger="socialcredit.api.access")
    answer = client.post("/v1/decisions", json={"subject": LACIE, "service": "venue.entry"},
                         headers={**bearer(cast.keys["service"]), "Audit-Purpose": "door 3"})
    assert answer.status_code == 201
    row = registry.store.decisions.get(answer.json()["decision_id"])
    assert row is not None
    assert (row.subject, row.service, row.principal, row.role, row.purpose) == (
        cast.pseudonyms[LACIE], "venue.entry", "venue", "service", "door 3")
    assert (row.allowed, row.effect, row.ledger_size) == (answer.json()["allowed"], answer.json()["effect"],
                                                          answer.json()["ledger_size"])
    assert registry.verify().ok
    lines = [r.getMessage() for r in caplog.records if r.name == "socialcredit.api.access"]
    assert len(lines) == 1 and lines[0].startswith("POST /v1/decisions 201 ") and lines[0].endswith("ms venue")
    assert LACIE not in caplog.text  # the access log names the route and the principal, never the body


def test_a_purpose_the_audit_log_cannot_hold_fails_alone(service):
    """A control character in Audit-Purpose once ended the deciding thread (every later decision
    then waited for ever); now it is that request's 422, and the next decision is answered."""
    client, registry, cast = service
    for lean in (True, False):
        client.app.lean_decisions = lean
        bad = client.post("/v1/decisions", json=GOOD, headers={**bearer(cast.keys["service"]),
                                                              "Audit-Purpose": b"door\x853"})
        assert bad.status_code == 422 and bad.json()["detail"] == "purpose has a control character at position 6 " \
                                                                  "(U+0085)"
        assert client.post("/v1/decisions", json=GOOD, headers=bearer(cast.keys["service"])).status_code == 201


def test_an_idempotent_decision_takes_the_full_path_and_is_replayed(service):
    client, registry, cast = service
    headers = {**bearer(cast.keys["service"]), "Idempotency-Key": "gate-1"}
    first = client.post("/v1/decisions", json=GOOD, headers=headers)
    again = client.post("/v1/decisions", json=GOOD, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content and again.headers["idempotent-replayed"] == "true"
    other = client.post("/v1/decisions", json={**GOOD, "subject": LACIE}, headers=headers)
    assert other.status_code == 422 and "different request" in other.json()["detail"]


def test_rate_limits_hold_on_the_lean_path(make_registry, database_url):
    registry = make_registry("nosedive")
    cast = populate(registry)
    settings = ApiSettings(db=database_url, api_rate_limits={**NO_LIMITS, "service": 0.01}, api_burst_seconds=100)
    with TestClient(create_app(settings, registry)) as client:
        headers = bearer(cast.keys["service"])
        assert client.post("/v1/decisions", json=GOOD, headers=headers).status_code == 201
        lean = client.post("/v1/decisions", json=GOOD, headers=headers)
        client.app.lean_decisions = False
        full = client.post("/v1/decisions", json=GOOD, headers=headers)
    assert lean.status_code == full.status_code == 429
    # The same words; the seconds to wait shrink as the clock runs (and may cross a whole second).
    seconds = re.compile(rb"retry after \d+ s")
    assert seconds.sub(b"", lean.content) == seconds.sub(b"", full.content) and seconds.search(lean.content)
    assert abs(int(lean.headers["retry-after"]) - int(full.headers["retry-after"])) <= 1


def test_a_body_over_the_limit_is_a_413_from_the_lean_path_too(make_registry, database_url):
    registry = make_registry("nosedive")
    cast = populate(registry)
    settings = ApiSettings(db=database_url, api_rate_limits=NO_LIMITS, api_max_body=1024)
    body = json.dumps({**GOOD, "subject": "x" * 2000}).encode()
    with TestClient(create_app(settings, registry)) as client:
        lean, full = _both(client, body, {**bearer(cast.keys["service"]), **JSON_TYPE})
    assert lean.status_code == full.status_code == 413
    assert lean.content == full.content


_values = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=210), st.sampled_from(["person", "organization", "venue.entry", "2026-06-01"]),
                    st.lists(st.integers(), max_size=2))
_bodies = st.dictionaries(st.sampled_from(["subject", "service", "kind", "at", "known_at", "extra"]), _values,
                          max_size=5)


@settings(max_examples=400, deadline=None)
@given(_bodies)
def test_a_body_is_plain_exactly_when_the_model_takes_it_unchanged(body):
    """plain_body says yes exactly to what DecisionRequest accepts, with the same values."""
    data = json.dumps(body, ensure_ascii=False).encode()
    fields = plain_body(data)
    try:
        model = DecisionRequest.model_validate(json.loads(data))
    except ValueError:
        assert fields is None
        return
    assert fields == (model.subject, model.service, model.kind, model.at)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["subject", "service", "kind", "at", "extra"]),
                       st.one_of(st.none(), st.integers(), st.sampled_from(
                           [NAOMI, LACIE, "venue.entry", "venue.bar", "housing.rent", "person", "organization",
                            "2026-06-01", "", "x" * 201])), max_size=5))
def test_random_bodies_get_the_same_answer_on_both_paths(service, body):
    client, _registry, cast = service
    lean, full = _both(client, json.dumps(body).encode(), {**bearer(cast.keys["service"]), **JSON_TYPE})
    _same(lean, full)


_text = st.text(max_size=30)  # any characters: quotes, backslashes, control characters, astral planes


@settings(max_examples=200, deadline=None)
@given(decision_id=_text, allowed=st.booleans(), effect=_text, service=_text, at=_text,
       ledger_size=st.integers(min_value=0, max_value=2**63), service_known=st.booleans(),
       policy=st.tuples(_text, _text, _text, _text), which=st.integers(min_value=0, max_value=2))
def test_a_decision_s_json_is_the_same_text_as_to_dict_s(decision_id, allowed, effect, service, at, ledger_size,
                                                       service_known, policy, which):
    from socialcredit.api.context import encode
    from socialcredit.api.lean import decision_json
    from socialcredit.registry.gateway import ServiceDecision
    from socialcredit.results import AppliedMeasure, ListReason, PolicyRef, RuleReason

    measures = [[], [AppliedMeasure("m1", service, effect, None, 'notice "x"', "remedy", "basis")],
                [AppliedMeasure("m1", "a.b", "deny", at, "n", "r", "l"), AppliedMeasure("m2", "c", "e", None, "", "", "")]
                ][which]
    reasons = [[], [RuleReason(service, 3, at, None, effect, -5.5)],
               [ListReason("defaulters", 1, at, at, "on the list", None), RuleReason("r", 2, "t", "u", "x", 1.0, 0.5)]
               ][which]
    decision = ServiceDecision(decision_id, allowed, effect, service, at, measures, reasons, PolicyRef(*policy),
                               ledger_size, service_known)
    assert decision_json(decision) == encode(decision.to_dict())


def test_the_access_log_writes_a_turn_s_lines_together_and_loses_none():
    import asyncio
    import io

    from socialcredit.api.logs import LineFormatter, TurnHandler

    stream = io.StringIO()
    handler = TurnHandler(stream)
    handler.setFormatter(LineFormatter())
    logger = logging.getLogger("socialcredit.test.turn")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        async def main():
            for n in range(5):
                logger.info("line %d", n)
            assert stream.getvalue() == ""  # at the end of this turn of the loop
            await asyncio.sleep(0)
            assert stream.getvalue() == "".join(f"INFO:     line {n}\n" for n in range(5))
            logger.warning("last")

        asyncio.run(main())
        logger.error("outside a loop")  # at once
        assert stream.getvalue().splitlines()[-2:] == ["WARNING:  last", "ERROR:    outside a loop"]
    finally:
        logger.removeHandler(handler)
