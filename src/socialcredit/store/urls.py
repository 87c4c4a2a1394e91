"""Database URLs, in SQLAlchemy's spelling, parsed without importing SQLAlchemy.

    sqlite:///relative/path.db        sqlite:////absolute/path.db
    postgresql://user:password@host:5432/dbname?options=...
    postgresql+psycopg://...          (the driver part is accepted and ignored)

Parsing here, not with `sqlalchemy.engine.make_url`, keeps a single `socialcredit check`
from importing SQLAlchemy (a fifth of a second); SQLAlchemy is only needed to create or
migrate a schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ..errors import InvalidInput

SQLITE = "sqlite"
POSTGRESQL = "postgresql"


class URLError(InvalidInput):
    """A database URL that cannot name a registry; the message shows the right spelling."""


@dataclass(frozen=True, slots=True)
class DatabaseURL:
    text: str  # as given (it may hold a password: show `describe()` instead)
    backend: str  # sqlite | postgresql
    path: str | None = None  # SQLite: the file
    conninfo: str | None = None  # PostgreSQL: a libpq URI

    def describe(self) -> str:
        """The URL for messages: the password replaced by ***."""
        if self.backend == SQLITE:
            return self.text
        parts = urlsplit(self.text)
        if parts.password is None:
            return self.text
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))


def parse_url(text: str) -> DatabaseURL:
    if not isinstance(text, str) or "://" not in text:
        raise URLError(f"{text!r} is not a database URL (e.g. sqlite:///socialcredit.db or postgresql://host/db)")
    scheme, rest = text.split("://", 1)
    backend = scheme.split("+", 1)[0].lower()
    if backend == SQLITE:
        return _sqlite(text, rest)
    if backend in ("postgresql", "postgres"):
        return DatabaseURL(text, POSTGRESQL, conninfo="postgresql://" + rest)
    raise URLError(f"{text}: unsupported database {scheme!r} (use sqlite:/// or postgresql://)")


def _sqlite(text: str, rest: str) -> DatabaseURL:
    if rest in ("", "/", "/:memory:"):
        raise URLError("an in-memory SQLite database cannot hold a registry; give a file (sqlite:///FILE)")
    if not rest.startswith("/"):
        # sqlite://file.db: SQLAlchemy would read "file.db" as a host and open an in-memory
        # database; name the mistake instead.
        raise URLError(f"{text}: a SQLite URL has three slashes before a relative path (sqlite:///{rest}) "
                       f"and four before an absolute one (sqlite:////folder/{rest})")
    path = rest[1:].split("?", 1)[0]
    return DatabaseURL(text, SQLITE, path=path)
