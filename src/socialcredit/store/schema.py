"""Creating a registry's schema, and bringing an older one up to date.

Alembic's migrations (migrations/versions) are the one definition of the schema; tables.py
mirrors it for SQLAlchemy. Both are imported only here, and only when a schema is created
or is older than this program: opening an up-to-date registry reads one row
(`alembic_version`) and compares it with `SCHEMA_HEAD`, so it costs the same at 100 entries
and at 10 million. A test holds `SCHEMA_HEAD` equal to the migrations' head.
"""

from __future__ import annotations

from importlib import resources

from ..errors import Conflict
from .database import Database, StoreError
from .urls import SQLITE

FORMAT = "socialcredit-registry"
FORMAT_VERSION = "1"
SCHEMA_HEAD = "0003"


def create(db: Database, meta: dict[str, str]) -> None:
    """Create the schema in an empty database and record what it is; refuse anything else."""
    from alembic import command
    from sqlalchemy import text

    engine = _engine(db)
    try:
        with engine.begin() as conn:
            _refuse_unless_empty(db, conn)
            command.upgrade(_alembic_config(conn), "head")
            rows = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
            conn.execute(text("INSERT INTO meta (name, value) VALUES (:name, :value)"),
                         [{"name": k, "value": v} for k, v in rows.items()])
        if db.backend == SQLITE:
            # Outside any transaction: the journal mode cannot change inside one.
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA journal_mode=WAL")
    except Exception as exc:
        _refuse_a_file_that_is_not_sqlite(db, exc)
        raise
    finally:
        engine.dispose()


def refuse_unless_empty(db: Database) -> None:
    """Refuse, before anything is written, a database that already holds something."""
    engine = _engine(db)
    try:
        with engine.connect() as conn:
            _refuse_unless_empty(db, conn)
    except (StoreError, Conflict):
        raise
    except Exception as exc:
        _refuse_a_file_that_is_not_sqlite(db, exc)
        raise
    finally:
        engine.dispose()


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
    """Run the migrations an older registry lacks (they only add)."""
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
        return create_engine(f"sqlite:///{db.url.path}")
    return create_engine("postgresql+psycopg://" + db.url.conninfo.split("://", 1)[1])


def _script_location() -> str:
    return str(resources.files("socialcredit.store") / "migrations")


def _alembic_config(conn):
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", _script_location())
    config.attributes["connection"] = conn
    return config


def _refuse_a_file_that_is_not_sqlite(db: Database, exc: Exception) -> None:
    if "file is not a database" in str(exc):
        raise StoreError(f"{db.where} is not a SQLite database (another program's file?)") from None


def _refuse_unless_empty(db: Database, conn) -> None:
    if conn.dialect.has_table(conn, "meta"):
        raise Conflict(f"{db.where} already holds a registry")
    if db.backend == SQLITE and conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
        raise Conflict(f"{db.where} is another program's database; not touching it")
