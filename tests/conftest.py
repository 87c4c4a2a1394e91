"""Shared fixtures: every registry test runs on SQLite and on the real PostgreSQL server.

PostgreSQL is found through SOCIALCREDIT_TEST_POSTGRES (a SQLAlchemy URL; `.ci/run` sets it).
Without it the PostgreSQL half is skipped with a visible reason, unless
SOCIALCREDIT_REQUIRE_POSTGRES is set, in which case a missing server fails the run: CI must
not pass by skipping.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
import typer.testing
from sqlalchemy import create_engine, text

from socialcredit.cli import app as _cli_app
from socialcredit.cli.tree import click_group
from socialcredit.instants import parse_instant
from socialcredit.registry import Registry

# Typer's CliRunner builds the whole Click tree from the commands' signatures at every invoke,
# which was a third of the suite's time. The `socialcredit` program builds each command once,
# when it is first used (cli/tree.py); the tests' CliRunner goes through that same tree, made
# once per test process (Click commands hold no state between invocations).
_CLI_TREE = click_group(_cli_app)
_typer_get_command = typer.testing._get_command
typer.testing._get_command = lambda typer_app: _CLI_TREE if typer_app is _cli_app else _typer_get_command(typer_app)

POSTGRES_URL = os.environ.get("SOCIALCREDIT_TEST_POSTGRES")
REQUIRE_POSTGRES = bool(os.environ.get("SOCIALCREDIT_REQUIRE_POSTGRES"))


def _postgres_or_skip() -> str:
    if not POSTGRES_URL:
        if REQUIRE_POSTGRES:
            pytest.fail("SOCIALCREDIT_REQUIRE_POSTGRES is set but SOCIALCREDIT_TEST_POSTGRES is not")
        pytest.skip("PostgreSQL tests need SOCIALCREDIT_TEST_POSTGRES (set by .ci/run)")
    return POSTGRES_URL


_TEMPLATE: Path | None = None


def sqlite_from_template(path: Path) -> str:
    """A SQLite file holding the migrated schema and no registry yet, copied from a template
    made once per test process: tests do not pay for the migrations each time. `init` on it
    records the registry as it would on an empty file."""
    global _TEMPLATE
    if _TEMPLATE is None:
        from socialcredit.store import Database, schema

        template = Path(tempfile.mkdtemp(prefix="socialcredit-template-")) / "schema.db"
        db = Database.open(f"sqlite:///{template}", create=True)
        try:
            schema.migrate(db)
        finally:
            db.close()
        _TEMPLATE = template
    shutil.copyfile(_TEMPLATE, path)
    return f"sqlite:///{path}"


@contextmanager
def fresh_database(backend: str, folder: Path):
    """A fresh database URL: a SQLite file in `folder` holding only the schema, or a new schema
    on the PostgreSQL server (dropped afterwards)."""
    if backend == "sqlite":
        yield sqlite_from_template(folder / "registry.db")
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
    try:
        yield f"{base}{separator}options=-csearch_path%3D{schema}"
    finally:
        with admin.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request, tmp_path):
    """A fresh database for one test, on each backend."""
    with fresh_database(request.param, tmp_path) as url:
        yield url


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


def allow_tampering(conn, backend: str, table: str = "entries") -> None:
    """What an attacker with database access does first: switch off a table's append-only guard."""
    if backend == "sqlite":
        conn.execute(text(f"DROP TRIGGER {table}_no_update"))
        conn.execute(text(f"DROP TRIGGER {table}_no_delete"))
    else:
        conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))


def allow_rewriting(registry, table: str = "entries") -> None:
    with behind_its_back(registry) as conn:
        allow_tampering(conn, registry.store.db.backend, table)


def at(text: str) -> int:
    return parse_instant(text, allow_date=True)
