"""Connections and transactions on SQLite (the default) and PostgreSQL (the scale-up).

The store speaks the DB-API directly (the standard library's `sqlite3`, `psycopg`):
SQLAlchemy Core and Alembic define and migrate the schema (schema.py) but are not imported
to read or append, so a single command starts fast.

Connections follow datasette's shape: ONE write connection per `Database`, used by one
thread at a time under a lock, and one read connection per thread. On SQLite the read
connections are opened read-only (`mode=ro`), so a read path cannot write by mistake, and a
registry this process cannot write (a read-only file, folder or disk: an auditor's copy) can
still be read and verified. `writable` says whether it can be written; every write, and the
registry before any write's work (`require_writable`), refuses a read-only one in one line.

Writers wait their turn: SQLite's write lock is taken up front (`BEGIN IMMEDIATE`) and
retried while another process holds it, reporting the wait through `on_wait`, until
`lock_timeout_s` (default 60 s, `SOCIALCREDIT_LOCK_TIMEOUT`) has passed; then `Unavailable`.
PostgreSQL serializes appends with an exclusive lock on `checkpoints`, bounded by the same
timeout. A transaction that fails, or is interrupted (Ctrl-C), is rolled back: nothing is
half-written. A `Database` may be given a default `on_wait`, for writes whose callers pass none.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Any

from ..errors import Forbidden, InvalidInput, NotFound, Unavailable
from .urls import POSTGRESQL, SQLITE, DatabaseURL, parse_url

DEFAULT_LOCK_TIMEOUT_S = 60.0
_BUSY_SLICE_MS = 200  # how long SQLite itself waits for a lock before we report the wait and retry
_SQLITE_CACHE_WRITE = -131_072  # KiB: 128 MiB, so a bulk append stays in memory until it commits
_SQLITE_CACHE_READ = -16_384  # KiB: 16 MiB per reading thread

Waiter = Callable[[float], None]  # called with the seconds waited so far


class StoreError(InvalidInput):
    """The database cannot be used as a registry; the message says which and why."""


class ReadOnly(Forbidden):
    """This process may read the database but not write it; the message says why."""


def lock_timeout_from_env() -> float:
    text = os.environ.get("SOCIALCREDIT_LOCK_TIMEOUT")
    if not text:
        return DEFAULT_LOCK_TIMEOUT_S
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"SOCIALCREDIT_LOCK_TIMEOUT must be a number of seconds, got {text!r}") from None
    if value < 0:
        raise InvalidInput(f"SOCIALCREDIT_LOCK_TIMEOUT must not be negative, got {text!r}")
    return value


class Tx:
    """A cursor that takes `?` placeholders on every backend."""

    __slots__ = ("cursor", "_param")

    def __init__(self, cursor, param: str):
        self.cursor = cursor
        self._param = param

    def sql(self, statement: str) -> str:
        return _placeholders(statement, self._param)

    def execute(self, statement: str, params: Sequence[Any] = ()):
        self.cursor.execute(_placeholders(statement, self._param), params)
        return self.cursor

    def executemany(self, statement: str, rows: Sequence[Sequence[Any]]) -> None:
        if rows:
            self.cursor.executemany(_placeholders(statement, self._param), rows)

    def one(self, statement: str, params: Sequence[Any] = ()):
        return self.execute(statement, params).fetchone()

    def all(self, statement: str, params: Sequence[Any] = ()) -> list:
        return self.execute(statement, params).fetchall()

    def scalar(self, statement: str, params: Sequence[Any] = ()):
        row = self.one(statement, params)
        return None if row is None else row[0]

    def marks(self, count: int) -> str:
        """`?,?,?` for an IN (...) list of `count` values."""
        return ",".join(["?"] * count)


class Database:
    """Connections to one database; safe to share between threads."""

    def __init__(self, url: DatabaseURL, *, lock_timeout_s: float | None = None, on_wait: Waiter | None = None):
        self.url = url
        self.backend = url.backend
        self.lock_timeout_s = lock_timeout_from_env() if lock_timeout_s is None else lock_timeout_s
        self.on_wait = on_wait  # for writes whose caller gives none (decision logs, audit records)
        self._param = "?" if self.backend == SQLITE else "%s"
        self._write_lock = threading.Lock()
        self._write_connection = None
        self._local = threading.local()
        self._opened: list = []
        self._opened_lock = threading.Lock()

    @classmethod
    def open(cls, url: str | DatabaseURL, *, create: bool = False, lock_timeout_s: float | None = None,
             on_wait: Waiter | None = None) -> "Database":
        parsed = parse_url(url) if isinstance(url, str) else url
        if parsed.backend == SQLITE:
            path = Path(parsed.path)
            if not create and not path.exists():
                raise NotFound(f"no registry at {parsed.path}: create one with `socialcredit --db {parsed.text} init`")
            if create and not path.parent.exists():
                raise StoreError(f"cannot create {parsed.path}: folder {path.parent} does not exist")
            if not create and path.is_dir():
                raise StoreError(f"{parsed.path} is a folder, not a registry file")
        return cls(parsed, lock_timeout_s=lock_timeout_s, on_wait=on_wait)

    @property
    def where(self) -> str:
        return self.url.describe()

    # -- read-only copies ----------------------------------------------------------------------

    @cached_property
    def read_only_cause(self) -> str | None:
        """Why this process cannot write the database, or None if it can.

        Asked of the file system, not found out by trying: a write that fails is work already
        done (a validated batch, a decided check). Looked at once; on PostgreSQL, None (a
        read-only server or role shows as the error of the first write).
        """
        if self.backend != SQLITE:
            return None
        return _sqlite_read_only_cause(Path(self.url.path))

    @property
    def writable(self) -> bool:
        return self.read_only_cause is None

    def require_writable(self, doing: str) -> None:
        """Refuse `doing` ("ingest", "check"…) at once if this process cannot write the database."""
        cause = self.read_only_cause
        if cause is not None:
            raise ReadOnly(f"cannot {doing}: {self.where} is read-only here ({cause}); "
                           "it can be read and verified, not written")

    # -- reading -------------------------------------------------------------------------------

    @contextmanager
    def read(self) -> Iterator[Tx]:
        """A read transaction on this thread's read connection: one consistent snapshot."""
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._connect_reader()
        if self.backend == SQLITE:
            cursor = connection.cursor()
            try:
                cursor.execute("BEGIN")
                yield Tx(cursor, self._param)
            except sqlite3.Error as exc:
                raise self._translate(exc) from None
            finally:
                if connection.in_transaction:
                    connection.rollback()  # reads wrote nothing; rollback just ends the snapshot
                cursor.close()
        else:
            with self._postgres_errors(), connection.transaction(), connection.cursor() as cursor:
                yield Tx(cursor, self._param)

    @contextmanager
    def reading(self, tx: Tx | None) -> Iterator[Tx]:
        """The caller's transaction if there is one (a read inside a write), else a new read."""
        if tx is not None:
            yield tx
        else:
            with self.read() as fresh:
                yield fresh

    # -- writing -------------------------------------------------------------------------------

    @contextmanager
    def write(self, *, append: bool = False, on_wait: Waiter | None = None) -> Iterator[Tx]:
        """A write transaction; with `append`, it also holds the ledger's append lock.

        Commits when the block ends, rolls back on any exception (Ctrl-C included).
        """
        self.require_writable("write to it")
        on_wait = on_wait or self.on_wait
        with self._write_lock:
            connection = self._write_connection
            if connection is None:
                connection = self._write_connection = self._connect_writer()
            if self.backend == SQLITE:
                cursor = connection.cursor()
                self._begin_immediate(cursor, on_wait)
                try:
                    yield Tx(cursor, self._param)
                    cursor.execute("COMMIT")
                except BaseException as exc:
                    if connection.in_transaction:
                        connection.rollback()
                    if isinstance(exc, sqlite3.Error):
                        raise self._translate(exc) from None
                    raise
                finally:
                    cursor.close()
            else:
                with self._postgres_errors(), connection.transaction(), connection.cursor() as cursor:
                    if append:
                        cursor.execute("LOCK TABLE checkpoints IN EXCLUSIVE MODE")
                    yield Tx(cursor, self._param)

    def _begin_immediate(self, cursor, on_wait: Waiter | None) -> None:
        started = time.monotonic()
        while True:
            try:
                cursor.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise self._translate(exc) from None
            waited = time.monotonic() - started
            if waited >= self.lock_timeout_s:
                raise Unavailable(f"{self.where}: another process has held the write lock for {waited:.0f} s; "
                                  "try again later (SOCIALCREDIT_LOCK_TIMEOUT sets how long to wait)")
            if on_wait is not None:
                on_wait(waited)

    # -- connections ---------------------------------------------------------------------------

    def _connect_reader(self):
        if self.backend == SQLITE:
            connection = self._sqlite_reader()
        else:
            connection = self._postgres()
        self._remember(connection)
        return connection

    def _connect_writer(self):
        if self.backend == SQLITE:
            try:
                connection = sqlite3.connect(self.url.path, isolation_level=None, check_same_thread=False)
                _sqlite_pragmas(connection, _SQLITE_CACHE_WRITE, _BUSY_SLICE_MS)
            except sqlite3.Error as exc:
                raise self._translate(exc) from None
        else:
            connection = self._postgres()
        self._remember(connection)
        return connection

    def _sqlite_reader(self):
        path = Path(self.url.path).resolve()
        try:
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None,
                                         check_same_thread=False)
            _sqlite_pragmas(connection, _SQLITE_CACHE_READ, int(self.lock_timeout_s * 1000))
            connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return connection
        except sqlite3.DatabaseError as exc:
            if not _needs_immutable(exc, path):
                raise self._translate(exc) from None
        # A WAL database in a folder we cannot write, without its -shm file: SQLite cannot make
        # one there. Read the file as immutable then, which ignores a write-ahead log: if there
        # is one with changes in it, that would show an older ledger as if it were the whole.
        wal = Path(f"{path}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            raise StoreError(f"{self.where} cannot be read here: its write-ahead log {wal.name} holds changes that "
                             f"SQLite reads only with a {path.name}-shm file beside it, and this user cannot create "
                             f"one in {path.parent}; copy {path.name}-shm too, or copy the registry into a folder "
                             "this user can write")
        connection = sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True, isolation_level=None,
                                     check_same_thread=False)
        _sqlite_pragmas(connection, _SQLITE_CACHE_READ, 0)
        return connection

    def _postgres(self):
        import psycopg

        try:
            connection = psycopg.connect(self.url.conninfo, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise Unavailable(f"{self.where}: cannot open database ({_first_line(exc)})") from None
        connection.execute(f"SET lock_timeout = '{int(self.lock_timeout_s * 1000)}ms'")
        return connection

    @contextmanager
    def _postgres_errors(self):
        import psycopg

        try:
            yield
        except psycopg.errors.LockNotAvailable:
            raise Unavailable(f"{self.where}: another process has held the append lock for "
                              f"{self.lock_timeout_s:.0f} s; try again later") from None
        except psycopg.OperationalError as exc:
            raise Unavailable(f"{self.where}: the database is unavailable ({_first_line(exc)})") from None
        except psycopg.errors.UndefinedTable as exc:
            raise StoreError(f"{self.where} is not a socialcredit registry ({_first_line(exc)})") from None

    def _remember(self, connection) -> None:
        with self._opened_lock:
            self._opened.append(connection)

    def _translate(self, exc: sqlite3.Error) -> Exception:
        message = _first_line(exc)
        if "file is not a database" in message or "not a database" in message:
            return StoreError(f"{self.where} is not a SQLite database (another program's file?)")
        if "no such table" in message:
            return StoreError(f"{self.where} is not a socialcredit registry ({message})")
        if _is_busy(exc):
            return Unavailable(f"{self.where}: the database is busy ({message}); try again")
        if "readonly" in message or "read-only" in message:
            return ReadOnly(f"{self.where} cannot be written ({message}): it can be read and verified")
        if "unable to open" in message:
            return StoreError(f"{self.where}: cannot open it ({message})")
        return StoreError(f"{self.where}: {message}")

    def close(self) -> None:
        with self._opened_lock:
            opened, self._opened = self._opened, []
        for connection in opened:
            try:
                connection.close()
            except Exception:  # closing is best effort; the process may be going down
                pass
        self._write_connection = None
        self._local = threading.local()


# -- helpers -----------------------------------------------------------------------------------


def _sqlite_pragmas(connection, cache_kib: int, busy_ms: int) -> None:
    # journal_mode=WAL is stored in the file: init sets it once (setting it here would write
    # the header of a file that may not be ours before we know whether it is).
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(f"PRAGMA cache_size={cache_kib}")
    connection.execute(f"PRAGMA busy_timeout={busy_ms}")


def _is_busy(exc: Exception) -> bool:
    text = str(exc)
    return "database is locked" in text or "database is busy" in text or "SQLITE_BUSY" in text


def _sqlite_read_only_cause(path: Path) -> str | None:
    """Why SQLite could not write this database here, or None if it could (as this user: root may)."""
    def can_write(place: Path) -> bool:
        return os.access(place, os.W_OK, effective_ids=os.access in os.supports_effective_ids)

    folder = path.parent
    try:
        if os.statvfs(folder).f_flag & os.ST_RDONLY:
            return "it is on a read-only file system"
    except OSError:  # the folder is not there: opening says so
        return None
    if path.exists() and not can_write(path):
        return "this user cannot write the file"
    # In WAL mode a writer also writes the -wal and -shm files beside the database, and
    # creates them in the folder when they are missing.
    sidecars = [Path(f"{path}{suffix}") for suffix in ("-wal", "-shm")]
    for sidecar in sidecars:
        if sidecar.exists() and not can_write(sidecar):
            return f"this user cannot write {sidecar.name}"
    if not can_write(folder) and not all(sidecar.exists() for sidecar in sidecars):
        return f"this user cannot write its folder {folder}, where SQLite keeps the -wal and -shm files"
    return None


def _needs_immutable(exc: Exception, path: Path) -> bool:
    text = str(exc)
    writable_folder = os.access(path.parent, os.W_OK)
    return not writable_folder and ("unable to open" in text or "readonly" in text or "disk I/O" in text)


@lru_cache(maxsize=512)
def _placeholders(statement: str, param: str) -> str:
    return statement if param == "?" else statement.replace("?", param)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else exc.__class__.__name__
