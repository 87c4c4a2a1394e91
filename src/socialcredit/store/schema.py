"""Creating a registry's schema, and bringing an older one up to date.

Alembic's migrations (migrations/versions) are the one definition of the schema; tables.py
mirrors it for SQLAlchemy. Both are imported only here, and only when a schema is created
or is older than this program: opening an up-to-date registry reads one row
(`alembic_version`) and compares it with `SCHEMA_HEAD`, so it costs the same at 100 entries
and at 10 million. A test holds `SCHEMA_HEAD` equal to the migrations' head.

A database may also come with the schema already in it (migrated by a DBA who keeps DDL
rights to themselves, or copied from a test's template): `init` then only records the registry.
"""

from __future__ import annotations

import sqlite3
from importlib import resources
from pathlib import Path

from ..errors import Conflict
from .database import Database, StoreError
from .urls import SQLITE

FORMAT = "socialcredit-registry"
FORMAT_VERSION = "1"
SCHEMA_HEAD = "0007"


EMPTY = "empty"
SCHEMA_ONLY = "schema only"  # migrated (by a DBA, or a test's template) but holding no registry yet
_TABLES = {"alembic_version", "entries", "checkpoints", "merkle_nodes", "standings", "fold_states", "decisions", "audit", "meta",
           "principals", "idempotency", "submissions",
           "log_heads"}


def create(db: Database, meta: dict[str, str]) -> None:
    """Make an empty database (or one holding only the migrated schema) a registry.

    An empty one gets the schema from the migrations; then what this database is goes into
    `meta`. Anything else (a registry, another program's data) is refused, untouched.
    """
    if refuse_unless_empty(db) == EMPTY:
        migrate(db)
    with db.write() as tx:
        rows = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
        tx.executemany("INSERT INTO meta (name, value) VALUES (?, ?)", list(rows.items()))
    if db.backend == SQLITE:
        # Outside any transaction: the journal mode cannot change inside one. It is stored in
        # the file, so it is set once, here.
        connection = sqlite3.connect(db.url.path, isolation_level=None)
        try:
            connection.execute("PRAGMA journal_mode=WAL")
        finally:
            connection.close()


def refuse_unless_empty(db: Database) -> str:
    """EMPTY or SCHEMA_ONLY; refuse (before anything is written) a database that holds more."""
    if db.backend == SQLITE and not Path(db.url.path).exists():
        return EMPTY
    with db.read() as tx:
        if db.backend == SQLITE:
            tables = {row[0] for row in tx.all("SELECT name FROM sqlite_master WHERE type = 'table'")}
        else:
            tables = {row[0] for row in tx.all("SELECT table_name FROM information_schema.tables "
                                               "WHERE table_schema = current_schema()")}
        if not tables:
            return EMPTY
        if "meta" in tables and tx.scalar("SELECT count(*) FROM meta"):
            raise Conflict(f"{db.where} already holds a registry")
        if (tables == _TABLES and tx.scalar("SELECT version_num FROM alembic_version") == SCHEMA_HEAD
                and tx.scalar("SELECT count(*) FROM entries") == 0):
            return SCHEMA_ONLY
    raise Conflict(f"{db.where} is another program's database; not touching it")


def check(db: Database) -> dict[str, str]:
    """The registry's meta rows; migrates a registry written by an earlier version first."""
    with db.read() as tx:
        try:
            meta = dict(tx.all("SELECT name, value FROM meta"))
        except StoreError:
            raise StoreError(f"{db.where} is not a socialcredit registry (no meta table); run `socialcredit init`") \
                from None
        version = tx.scalar("SELECT version_num FROM alembic_version")
    if meta.get("format") != FORMAT:
        raise StoreError(f"{db.where} is not a socialcredit registry")
    if meta.get("format_version") != FORMAT_VERSION:
        raise StoreError(f"{db.where} is registry format {meta.get('format_version')}, this program reads "
                         f"{FORMAT_VERSION}")
    if version != SCHEMA_HEAD:
        migrate(db)
    return meta


def migrate(db: Database) -> None:
    """Run the migrations a database lacks: all of them for an empty one (the schema, no
    registry yet), the newer ones for an older registry (they only add)."""
    from alembic import command

    engine = _engine(db)
    try:
        with engine.begin() as conn:
            command.upgrade(_alembic_config(conn), "head")
    except Exception as exc:
        if "readonly" in str(exc) or "read-only" in str(exc):
            raise StoreError(f"{db.where} was written by an earlier version and must be upgraded, which needs "
                             "write access: open it once where it can be written") from None
        raise
    finally:
        engine.dispose()


def migrations_head() -> str:
    """The newest revision among the migrations (for the test that holds SCHEMA_HEAD to it)."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", _script_location())
    return ScriptDirectory.from_config(config).get_current_head()


def _engine(db: Database):
    from sqlalchemy import create_engine

    if db.backend == SQLITE:
        # Python's sqlite3 begins a transaction only before a write of rows, so each CREATE of a
        # migration committed on its own: a new registry cost some 80 fsyncs (0.3 s). Begun
        # explicitly, as SQLAlchemy's pysqlite notes describe, the migrations are one
        # transaction: all of the schema or none of it, and one commit.
        from sqlalchemy import event

        engine = create_engine(f"sqlite:///{db.url.path}")

        @event.listens_for(engine, "connect")
        def _no_implicit_transactions(dbapi_connection, _record):
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def _begin(conn):
            conn.exec_driver_sql("BEGIN")

        return engine
    return create_engine("postgresql+psycopg://" + db.url.conninfo.split("://", 1)[1])


def _script_location() -> str:
    return str(resources.files("socialcredit.store") / "migrations")


def _alembic_config(conn):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _script_location())
    config.attributes["connection"] = conn
    return config
