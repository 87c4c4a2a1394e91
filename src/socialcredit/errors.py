"""One error tree: every error a user can cause or meet is a `SocialCreditError` of one kind.

A front door maps the kind, never the message: the CLI to an exit status, the HTTP API to a
status code. The message is one line that names the place and the cause.

    kind            CLI exit   HTTP
    invalid_input   2          422 (400 for a malformed request)
    not_found       2          404
    conflict        2          409
    forbidden       2          403
    unauthenticated 2          401 (no key, an unknown key, a revoked key)
    unavailable     2          503, with Retry-After
    tampered        1          409 (the stored ledger contradicts itself)

`InvalidInput` is also a `ValueError`, so pydantic validators and code that catch
ValueError keep working.
"""

from __future__ import annotations

from enum import Enum


class ErrorKind(str, Enum):
    INVALID_INPUT = "invalid_input"
    NOT_FOUND = "not_found"
    CONFLICT = "conflict"
    FORBIDDEN = "forbidden"
    UNAUTHENTICATED = "unauthenticated"
    UNAVAILABLE = "unavailable"
    TAMPERED = "tampered"


class SocialCreditError(Exception):
    """Base of every error the library raises on purpose; `kind` says what sort it is."""

    kind: ErrorKind = ErrorKind.INVALID_INPUT

    def __init__(self, message: str):
        super().__init__(_one_line(message))

    @property
    def message(self) -> str:
        return str(self)


class InvalidInput(SocialCreditError, ValueError):
    """The request or the data is not acceptable as given."""

    kind = ErrorKind.INVALID_INPUT


class NotFound(SocialCreditError, LookupError):
    """The thing asked about does not exist (an entry, a decision, a registry, a file)."""

    kind = ErrorKind.NOT_FOUND


class Conflict(SocialCreditError):
    """The request contradicts what is already there (a reused key, a registry that exists)."""

    kind = ErrorKind.CONFLICT


class Forbidden(SocialCreditError):
    """The caller may not do this."""

    kind = ErrorKind.FORBIDDEN


class Unauthenticated(SocialCreditError):
    """The caller is not known: no key, a malformed or unknown key, or a revoked one."""

    kind = ErrorKind.UNAUTHENTICATED


class Unavailable(SocialCreditError):
    """The database is busy or unreachable; the same request may succeed later."""

    kind = ErrorKind.UNAVAILABLE

    def __init__(self, message: str, retry_after_s: float = 1.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Tampered(SocialCreditError):
    """The stored ledger is not what the registry wrote (run `socialcredit verify`)."""

    kind = ErrorKind.TAMPERED


def _one_line(text: str) -> str:
    """Control characters (a line break in a user's value) are shown escaped, never printed."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)


__all__ = [
    "Conflict",
    "ErrorKind",
    "Forbidden",
    "InvalidInput",
    "NotFound",
    "SocialCreditError",
    "Tampered",
    "Unauthenticated",
    "Unavailable",
]
