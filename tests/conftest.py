"""Shared fixtures: every registry test runs on SQLite and on the real PostgreSQL server.

PostgreSQL is found through SOCIALCREDIT_TEST_POSTGRES (a SQLAlchemy URL; `.ci/run` sets it).
Without it the PostgreSQL half is skipped with a visible reason, unless
SOCIALCREDIT_REQUIRE_POSTGRES is set, in which case a missing server fails the run: CI must
not pass by skipping.
"""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager

import pytest
from sqlalchemy import create_engine, text

from socialcredit.instants import parse_instant
from socialcredit.registry import Registry

POSTGRES_URL = os.environ.get("SOCIALCREDIT_TEST_POSTGRES")
REQUIRE_POSTGRES = bool(os.environ.get("SOCIALCREDIT_REQUIRE_POSTGRES"))


def _postgres_or_skip() -> str:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("SOCIALCREDIT_REQUIRE_POSTGRES is set but SOCIALCREDIT_TEST_POSTGRES is not")
        pytest.skip("PostgreSQL tests need SOCIALCREDIT_TEST_POSTGRES (set by .ci/run)")
    return POSTGRES_URL


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    """A fresh, empty database URL: a SQLite file, or a new schema on the PostgreSQL server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/registry.db"
        return
    base = _postgres_or_skip()
    schema = f"t_{secrets.token_hex(6)}"
    admin = create_engine(base)
    try:
        with admin.begin() as conn:
            conn.execute(text(f"CREATE SCHEMA {schema}"))
    except Exception as exc:  # the server is not there
        admin.dispose()
        if REQUIRE_POSTGRES:
            pytest.fail(f"PostgreSQL at {base} is required but unusable: {exc}")
        pytest.skip(f"PostgreSQL at {base} is unusable: {exc}")
    separator = "&" if "?" in base else "?"
    yield f"{base}{separator}options=-csearch_path%3D{schema}"
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
    admin.dispose()


@pytest.fixture
def make_registry(database_url, tmp_path):
    """Registry factory: make_registry(policy="rongcheng") on this test's database."""
    opened: list[Registry] = []

    def make(policy="rongcheng") -> Registry:
        registry = Registry.init(database_url, policy, key_file=tmp_path / "registry.key")
        opened.append(registry)
        return registry

    yield make
    for registry in opened:
        registry.close()


@pytest.fixture
def registry(make_registry):
    return make_registry()


def event(subject, event_type, when, key, provider="test", kind="person", **attributes):
    """One provider event, as a JSONL line would carry it."""
    return {
        "subject": subject,
        "subject_kind": kind,
        "type": event_type,
        "occurred_at": when,
        "provider": provider,
        "key": str(key),
        "attributes": attributes,
    }


@contextmanager
def behind_its_back(registry):
    """A transaction on the registry's database that the registry knows nothing about: how the
    tests play an attacker (or a careless script) with database access."""
    engine = create_engine(registry.store.db.url.text)
    try:
        with engine.begin() as conn:
            yield conn
    finally:
        engine.dispose()


def allow_tampering(conn, backend: str) -> None:
    """What an attacker with database access does first: switch off the append-only guard."""
    if backend == "sqlite":
        conn.execute(text("DROP TRIGGER entries_no_update"))
        conn.execute(text("DROP TRIGGER entries_no_delete"))
    else:
        conn.execute(text("ALTER TABLE entries DISABLE TRIGGER USER"))


def at(text: str) -> int:
    return parse_instant(text, allow_date=True)
