"""Schemathesis over the published OpenAPI document, every endpoint, with valid keys.

A live `socialcredit serve` on SQLite; each operation is called with the key of a role that
may use it, on data generated from the schema (valid and not). No answer may be a server
error, and every answer must match the document: its status, its media type, its schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (content_type_conformance, response_schema_conformance,
                                               status_code_conformance)

from conftest import sqlite_from_template
from live import Server, bearer, populate
from socialcredit.registry import Registry

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def _role(method: str, path: str) -> str:
    if path.startswith("/v1/events"):
        return "provider"
    if path == "/v1/decisions" and method == "POST":
        return "service"
    if path.startswith(("/v1/me", "/v1/ratings")):
        return "subject"
    if path.startswith(("/v1/principals", "/v1/policies")):
        return "admin"
    return "auditor"




@pytest.fixture(scope="module")
def live(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    url = sqlite_from_template(folder / "registry.db")
    with Registry.init(url, "nosedive", key_file=folder / "registry.key") as registry:
        cast = populate(registry)
    with Server(url, folder / "registry.key", folder / "server.log",
                env={"SOCIALCREDIT_API_RATE_LIMITS": '{"provider": 0, "service": 0, "subject": 0, "reviewer": 0, '
                                                     '"auditor": 0, "admin": 0, "anonymous": 0}'}) as server:
        yield server, cast


EXAMPLES = 15  # per operation and mode: up to about 1,000 calls in all


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_every_endpoint_answers_as_documented(live, mode):
    from schemathesis.generation import GenerationMode

    server, cast = live
    document = schemathesis.openapi.from_url(server.base + "/v1/openapi.json")
    failures, operations = [], 0
    for found in document.get_all_operations():
        operation = found.ok()
        operations += 1
        key = cast.keys[_role(operation.method.upper(), operation.path)]

        @given(case=operation.as_strategy(generation_mode=GenerationMode(mode)))
        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        def call(case):
            response = case.call(base_url=server.base, headers=bearer(key))
            case.validate_response(response, checks=CHECKS)

        try:
            call()
        except Unsatisfiable:
            assert mode == "negative"  # an operation without parameters or body: nothing to make invalid
        except Exception as exc:  # collected: every operation is tried, then all failures are shown
            failures.append(f"{operation.method.upper()} {operation.path}: {str(exc)[:1500]}")
    assert operations >= 33  # every operation of the document (the access matrix holds it to the routes)
    assert failures == [], "\n\n".join(failures)
