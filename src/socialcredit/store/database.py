"""Storage: one schema on SQLite (the default) and PostgreSQL (the scale-up).

The schema and its migrations are SQLAlchemy Core and Alembic. The hot paths (appending a
batch of entries, writing standings, logging decisions) hand rows straight to the driver's
`executemany`, inside the same SQLAlchemy transaction, because building an ORM object per
event would cost more than everything else ingest does.

Appends are serialized: SQLite takes its write lock up front (BEGIN IMMEDIATE), PostgreSQL
an exclusive lock on the checkpoints table, so sequence numbers are gapless and the Merkle
tree grows one writer at a time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

from sqlalchemy import create_engine, event, select, text
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, OperationalError, ProgrammingError

from ..errors import InvalidInput
from . import tables
from ..ledger.entries import EVENT, POLICY, VOID, Entry

FORMAT = "socialcredit-registry"
FORMAT_VERSION = "1"
_CHUNK = 500  # keys per IN (...) lookup: well under every driver's parameter limit


class StoreError(InvalidInput):
    """The database cannot be used as a registry; the message says which and why."""


@dataclass(frozen=True, slots=True)
class Checkpoint:
    size: int
    root: bytes
    frontier: list[str]
    recorded_us: int


def entry_row(entry: Entry, body: str, leaf_hash: bytes, actor: str | None = None) -> tuple:
    """The row `append` writes for an entry: its indexed columns, canonical body and leaf hash."""
    return (entry.seq, entry.kind, entry.recorded_us, entry.provider, entry.key, entry.subject, entry.type,
            entry.occurred_us, body, leaf_hash, actor)


def describe_url(url: str) -> str:
    """The URL without a password, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return url


class Store:
    def __init__(self, engine: Engine, url: str):
        self.engine = engine
        self.url = url
        self.dialect = engine.dialect.name
        self._param = "?" if self.dialect == "sqlite" else "%s"

    # -- opening -------------------------------------------------------------------------------

    @classmethod
    def open(cls, url: str, *, create: bool = False) -> "Store":
        try:
            parsed = make_url(url)
        except ArgumentError:
            raise StoreError(f"{url!r} is not a database URL (e.g. sqlite:///socialcredit.db)") from None
        backend = parsed.get_backend_name()
        if backend == "sqlite":
            path = parsed.database
            if not path or path == ":memory:":
                raise StoreError("an in-memory SQLite database cannot hold a registry; give a file")
            if not create and not Path(path).exists():
                raise StoreError(f"no registry at {path}: create one with `socialcredit --db {url} init`")
            if create and not Path(path).parent.exists():
                raise StoreError(f"cannot create {path}: folder {Path(path).parent} does not exist")
            engine = create_engine(url)
            _sqlite_pragmas(engine)
        elif backend == "postgresql":
            if parsed.get_driver_name() not in ("psycopg", "psycopg2"):
                parsed = parsed.set(drivername="postgresql+psycopg")
            engine = create_engine(parsed, pool_pre_ping=True)
            _postgres_append_lock(engine)
        else:
            raise StoreError(f"{describe_url(url)}: unsupported database (use sqlite:/// or postgresql://)")
        store = cls(engine, url)
        try:
            store._check_reachable()
            if not create:
                store._check_is_registry()
                store._migrate()
        except StoreError:
            store.close()
            raise
        return store

    def _check_reachable(self) -> None:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except (OperationalError, DatabaseError) as exc:
            raise StoreError(f"{describe_url(self.url)}: cannot open database ({_first_line(exc)})") from None

    def _check_is_registry(self) -> None:
        where = describe_url(self.url)
        try:
            with self.engine.connect() as conn:
                rows = dict(conn.execute(select(tables.meta.c.name, tables.meta.c.value)).all())
        except (OperationalError, ProgrammingError, DatabaseError) as exc:
            if "file is not a database" in str(exc) or "not a database" in str(exc):
                raise StoreError(f"{where} is not a SQLite database (another program's file?)") from None
            raise StoreError(f"{where} is not a socialcredit registry (no meta table); run `socialcredit init`") from None
        if rows.get("format") != FORMAT:
            raise StoreError(f"{where} is not a socialcredit registry")
        if rows.get("format_version") != FORMAT_VERSION:
            raise StoreError(f"{where} is registry format {rows.get('format_version')}, this program reads {FORMAT_VERSION}")

    def _alembic_config(self, conn):
        from alembic.config import Config

        config = Config()
        config.set_main_option("script_location", str(resources.files("socialcredit.store") / "migrations"))
        config.attributes["connection"] = conn
        return config

    def _migrate(self) -> None:
        """Bring a registry made by an earlier version up to this version's schema (additive)."""
        from alembic import command
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        with self.engine.begin() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
            config = self._alembic_config(conn)
            if current != ScriptDirectory.from_config(config).get_current_head():
                command.upgrade(config, "head")

    def initialize(self, meta: dict[str, str]) -> None:
        """Create the schema with Alembic and record what this database is."""
        from alembic import command

        try:
            with self.engine.begin() as conn:
                self._refuse_unless_empty(conn)
                command.upgrade(self._alembic_config(conn), "head")
                rows = {"format": FORMAT, "format_version": FORMAT_VERSION, **meta}
                conn.execute(tables.meta.insert(), [{"name": k, "value": v} for k, v in rows.items()])
            if self.dialect == "sqlite":
                # Outside any transaction (the mode cannot change inside one), through the driver.
                raw = self.engine.raw_connection()
                try:
                    raw.driver_connection.execute("PRAGMA journal_mode=WAL")
                finally:
                    raw.close()
        except DatabaseError as exc:
            if "file is not a database" in str(exc):
                raise StoreError(f"{describe_url(self.url)} is not a SQLite database (another program's file?)") from None
            raise

    def ensure_empty(self) -> None:
        """Refuse, before anything is written, a database that already holds something."""
        try:
            with self.engine.connect() as conn:
                self._refuse_unless_empty(conn)
        except DatabaseError as exc:
            if "file is not a database" in str(exc):
                raise StoreError(f"{describe_url(self.url)} is not a SQLite database (another program's file?)") from None
            raise

    def _refuse_unless_empty(self, conn: Connection) -> None:
        if conn.dialect.has_table(conn, "meta"):
            raise StoreError(f"{describe_url(self.url)} already holds a registry")
        if self.dialect == "sqlite" and conn.exec_driver_sql("SELECT count(*) FROM sqlite_master").scalar():
            raise StoreError(f"{describe_url(self.url)} is another program's database; not touching it")

    def set_meta(self, name: str, value: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(tables.meta.insert(), [{"name": name, "value": value}])

    def meta(self) -> dict[str, str]:
        with self.engine.connect() as conn:
            return dict(conn.execute(select(tables.meta.c.name, tables.meta.c.value)).all())

    def close(self) -> None:
        self.engine.dispose()

    # -- transactions --------------------------------------------------------------------------

    @contextmanager
    def appending(self) -> Iterator[Connection]:
        """A write transaction that holds the ledger's append lock until it commits."""
        with self.engine.connect() as conn:
            conn = conn.execution_options(socialcredit_append=True)
            with conn.begin():
                yield conn

    def _sql(self, statement: str) -> str:
        return _placeholders(statement, self._param)

    def _cursor(self, conn: Connection):
        return conn.connection.driver_connection.cursor()

    # -- the ledger ----------------------------------------------------------------------------

    def last_checkpoint(self, conn: Connection | None = None) -> Checkpoint | None:
        query = select(tables.checkpoints).order_by(tables.checkpoints.c.size.desc()).limit(1)
        with _maybe_connect(self.engine, conn) as c:
            row = c.execute(query).first()
        if row is None:
            return None
        return Checkpoint(row.size, bytes(row.root), json.loads(row.frontier), row.recorded_us)

    def checkpoints(self) -> list[Checkpoint]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(tables.checkpoints).order_by(tables.checkpoints.c.size)).all()
        return [Checkpoint(r.size, bytes(r.root), json.loads(r.frontier), r.recorded_us) for r in rows]

    def size(self) -> int:
        checkpoint = self.last_checkpoint()
        return checkpoint.size if checkpoint else 0

    def existing_events(self, conn: Connection, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, str]]:
        """(provider, key) → (seq, body) for the keys already in the ledger."""
        found: dict[tuple[str, str], tuple[int, str]] = {}
        by_provider: dict[str, list[str]] = {}
        for provider, key in keys:
            by_provider.setdefault(provider, []).append(key)
        cursor = self._cursor(conn)
        for provider, provider_keys in by_provider.items():
            cursor.execute(self._sql("SELECT 1 FROM entries WHERE provider = ? LIMIT 1"), (provider,))
            if cursor.fetchone() is None:
                continue  # a provider's first batch: nothing to look up key by key
            for start in range(0, len(provider_keys), _CHUNK):
                chunk = provider_keys[start : start + _CHUNK]
                marks = ",".join([self._param] * len(chunk))
                cursor.execute(
                    f"SELECT key, seq, body FROM entries WHERE provider = {self._param} AND key IN ({marks})",
                    [provider, *chunk],
                )
                for key, seq, body in cursor.fetchall():
                    found[(provider, key)] = (seq, body)
        return found

    def append(self, conn: Connection, rows: Sequence[tuple], checkpoint: Checkpoint) -> None:
        """Insert entry rows (see `entry_row`) and the checkpoint that covers them, in the caller's transaction."""
        cursor = self._cursor(conn)
        cursor.executemany(
            self._sql(
                "INSERT INTO entries (seq, kind, recorded_us, provider, key, subject, type, "
                "occurred_us, body, leaf_hash, actor) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
            ),
            rows,
        )
        cursor.execute(
            self._sql("INSERT INTO checkpoints (size, root, frontier, recorded_us) VALUES (?,?,?,?)"),
            (checkpoint.size, checkpoint.root, json.dumps(checkpoint.frontier), checkpoint.recorded_us),
        )

    def entries_for_subjects(self, subjects: Iterable[str], conn: Connection | None = None,
                             before: int | None = None) -> dict[str, list[Entry]]:
        """Every entry about each subject (events and the voids that cancel them), in seq order."""
        result: dict[str, list[Entry]] = {}
        subjects = list(subjects)
        with _maybe_connect(self.engine, conn) as c:
            cursor = self._cursor(c)
            for start in range(0, len(subjects), _CHUNK):
                chunk = subjects[start : start + _CHUNK]
                marks = ",".join([self._param] * len(chunk))
                query = f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE subject IN ({marks})"
                params: list = list(chunk)
                if before is not None:
                    query += f" AND seq < {self._param}"
                    params.append(before)
                cursor.execute(query + " ORDER BY seq", params)
                for row in cursor.fetchall():
                    entry = _row_entry(row)
                    result.setdefault(entry.subject, []).append(entry)
        return result

    def actor_events(self, conn: Connection, actor: str, event_type: str) -> list[tuple[int, int, dict]]:
        """(seq, occurred_us, attributes) of every live event of a type this actor (a rater) caused.

        A void names the actor of the entry it cancels, so cancelled ratings are left out here.
        """
        cursor = self._cursor(conn)
        cursor.execute(self._sql("SELECT seq, kind, occurred_us, body FROM entries WHERE actor = ? AND "
                                 "(type = ? OR kind = ?) ORDER BY seq"), (actor, event_type, VOID))
        rows = cursor.fetchall()
        voided = {json.loads(body)["target"] for _, kind, _, body in rows if kind == VOID}
        return [(seq, occurred, json.loads(body)["attributes"]) for seq, kind, occurred, body in rows
                if kind != VOID and seq not in voided]

    def rating_triples(self, event_type: str) -> list[tuple[str, str, int]]:
        """(ratee, rater, stars) of every rating not cancelled by a void, in ledger order."""
        with self.engine.connect() as conn:
            cursor = self._cursor(conn)
            cursor.execute(self._sql("SELECT body FROM entries WHERE kind = ?"), (VOID,))
            voided = {json.loads(row[0])["target"] for row in cursor.fetchall()}
            cursor.execute(self._sql("SELECT seq, subject, actor, body FROM entries WHERE type = ? ORDER BY seq"),
                           (event_type,))
            return [(subject, actor, json.loads(body)["attributes"]["stars"])
                    for seq, subject, actor, body in cursor.fetchall() if seq not in voided]

    def entries_for_subject(self, subject: str) -> list[Entry]:
        return self.entries_for_subjects([subject]).get(subject, [])

    def iter_columns(self, batch: int = 20_000) -> Iterator[tuple]:
        """Every stored entry in seq order, streamed: (seq, kind, recorded_us, provider, key,
        subject, type, occurred_us, body, leaf_hash)."""
        with self.engine.connect() as conn:
            cursor = self._cursor(conn)
            last = -1
            while True:
                cursor.execute(
                    self._sql(
                        "SELECT seq, kind, recorded_us, provider, key, subject, type, occurred_us, body, leaf_hash, "
                        "actor FROM entries WHERE seq > ? ORDER BY seq LIMIT ?"
                    ),
                    (last, batch),
                )
                rows = cursor.fetchall()
                if not rows:
                    return
                for row in rows:
                    yield (*row[:9], bytes(row[9]), row[10])
                last = rows[-1][0]

    def count_entries(self) -> int:
        with self.engine.connect() as conn:
            return conn.exec_driver_sql("SELECT count(*) FROM entries").scalar()

    def leaf_hashes(self, size: int) -> list[bytes]:
        with self.engine.connect() as conn:
            cursor = self._cursor(conn)
            cursor.execute(self._sql("SELECT leaf_hash FROM entries WHERE seq < ? ORDER BY seq"), (size,))
            return [bytes(row[0]) for row in cursor.fetchall()]

    def entry(self, seq: int) -> Entry | None:
        found = self._select_entries("seq = ?", (seq,))
        return found[0] if found else None

    def policy_entries(self) -> list[Entry]:
        return self._select_entries("kind = ?", (POLICY,))

    def _select_entries(self, where: str, params: tuple) -> list[Entry]:
        with self.engine.connect() as conn:
            cursor = self._cursor(conn)
            cursor.execute(self._sql(f"SELECT {_ENTRY_COLUMNS} FROM entries WHERE {where} ORDER BY seq"), params)
            return [_row_entry(row) for row in cursor.fetchall()]

    def subjects(self, conn: Connection | None = None) -> list[str]:
        with _maybe_connect(self.engine, conn) as c:
            cursor = self._cursor(c)
            cursor.execute("SELECT DISTINCT subject FROM entries WHERE subject IS NOT NULL")
            return [row[0] for row in cursor.fetchall()]

    def subjects_since(self, seq: int) -> set[str]:
        with self.engine.connect() as conn:
            cursor = self._cursor(conn)
            cursor.execute(self._sql("SELECT DISTINCT subject FROM entries WHERE seq >= ? AND subject IS NOT NULL"), (seq,))
            return {row[0] for row in cursor.fetchall()}

    # -- derived: standings ---------------------------------------------------------------------

    def put_standings(self, conn: Connection, rows: Sequence[tuple]) -> None:
        """Upsert (subject, policy_digest, known_size, valid_from, valid_until, cacheable, score, tier, body)."""
        if not rows:
            return
        cursor = self._cursor(conn)
        cursor.executemany(
            self._sql(
                "INSERT INTO standings (subject, policy_digest, known_size, valid_from_us, valid_until_us, "
                "cacheable, score, tier, body) VALUES (?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (subject) DO UPDATE SET policy_digest = excluded.policy_digest, "
                "known_size = excluded.known_size, valid_from_us = excluded.valid_from_us, "
                "valid_until_us = excluded.valid_until_us, cacheable = excluded.cacheable, "
                "score = excluded.score, tier = excluded.tier, body = excluded.body"
            ),
            rows,
        )

    def clear_standings(self, conn: Connection) -> None:
        conn.execute(tables.standings.delete())

    def standing_row(self, subject: str) -> tuple | None:
        with self.engine.connect() as conn:
            cursor = self._cursor(conn)
            cursor.execute(
                self._sql(
                    "SELECT policy_digest, known_size, valid_from_us, valid_until_us, cacheable, body "
                    "FROM standings WHERE subject = ?"
                ),
                (subject,),
            )
            return cursor.fetchone()

    def standing_rows(self) -> Iterator[tuple]:
        with self.engine.connect() as conn:
            cursor = self._cursor(conn)
            cursor.execute(
                "SELECT subject, policy_digest, known_size, valid_from_us, valid_until_us, cacheable, body FROM standings"
            )
            while True:
                rows = cursor.fetchmany(10_000)
                if not rows:
                    return
                yield from rows

    def tier_counts(self) -> dict[str | None, int]:
        with self.engine.connect() as conn:
            rows = conn.exec_driver_sql("SELECT tier, count(*) FROM standings GROUP BY tier").all()
        return {tier: count for tier, count in rows}

    # -- logs: decisions and audit --------------------------------------------------------------

    def log_decisions(self, rows: Sequence[tuple]) -> None:
        if not rows:
            return
        with self.engine.begin() as conn:
            self._cursor(conn).executemany(
                self._sql(
                    "INSERT INTO decisions (id, subject, service, at_us, policy_digest, ledger_size, allowed, "
                    "effect, measures, recorded_us, principal) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
                ),
                rows,
            )

    def decision(self, decision_id: str):
        with self.engine.connect() as conn:
            return conn.execute(select(tables.decisions).where(tables.decisions.c.id == decision_id)).first()

    def log_audit(self, rows: Sequence[tuple]) -> None:
        """(at_us, principal, action, subject, detail) rows."""
        if not rows:
            return
        with self.engine.begin() as conn:
            self._cursor(conn).executemany(
                self._sql("INSERT INTO audit (at_us, principal, action, subject, detail) VALUES (?,?,?,?,?)"),
                rows,
            )

    def audit_rows(self, subject: str | None = None, limit: int = 100):
        query = select(tables.audit).order_by(tables.audit.c.id.desc()).limit(limit)
        if subject is not None:
            query = query.where(tables.audit.c.subject == subject)
        with self.engine.connect() as conn:
            return conn.execute(query).all()


# -- helpers -----------------------------------------------------------------------------------


_ENTRY_COLUMNS = "seq, kind, recorded_us, subject, type, occurred_us, provider, key, body"


def _row_entry(row) -> Entry:
    seq, kind, recorded_us, subject, event_type, occurred_us, provider, key, body = row
    data = json.loads(body)
    if kind == EVENT:
        return Entry(seq, kind, recorded_us, subject, data["subject_kind"], event_type, occurred_us,
                     provider, key, data["attributes"], derived=data.get("derived"))
    if kind == VOID:
        return Entry(seq, kind, recorded_us, subject, target=data["target"], reason=data["reason"])
    return Entry(seq, kind, recorded_us, policy=data["policy"])


@lru_cache(maxsize=256)
def _placeholders(statement: str, param: str) -> str:
    return statement if param == "?" else statement.replace("?", param)


@contextmanager
def _maybe_connect(engine: Engine, conn: Connection | None):
    if conn is not None:
        yield conn
    else:
        with engine.connect() as fresh:
            yield fresh


def _first_line(exc: Exception) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else exc.__class__.__name__


def _sqlite_pragmas(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record):
        # Let SQLAlchemy's "begin" event issue BEGIN itself (pysqlite's implicit BEGIN is
        # deferred, which lets two writers both read size N and then collide).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        # journal_mode=WAL is stored in the file, so `initialize` sets it once: setting it here
        # would rewrite the header of a file that is not ours before we know it is not ours.
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA cache_size=-131072")  # 128 MiB: a bulk append stays in memory until commit
        cursor.execute("PRAGMA busy_timeout=10000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(conn):
        if conn.get_execution_options().get("socialcredit_append"):
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            conn.exec_driver_sql("BEGIN")


def _postgres_append_lock(engine: Engine) -> None:
    @event.listens_for(engine, "begin")
    def on_begin(conn):
        if conn.get_execution_options().get("socialcredit_append"):
            conn.exec_driver_sql("LOCK TABLE checkpoints IN EXCLUSIVE MODE")
