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

import re
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


EXCERPT_LENGTH = 40
# A resident identity number, also written with spaces or hyphens in it: 15 or more digits
# (any script's: full-width digits are digits too) with nothing else between them.
_DIGIT_RUN = re.compile(r"\d[\d \-]*[\dXx]")
_ID_DIGITS = 15


def excerpt(value: object, limit: int = EXCERPT_LENGTH) -> str:
    """A value a user gave, as an error message quotes it: short, escaped and masked.

    The one way a message echoes a value (a 1 MB event type must not come back whole):

    * text is quoted, and escaped as `repr` escapes it, so a line break, a NUL, a lone
      surrogate or a bidirectional override shows as `\\n`, `\\x00`, `\\ud800`, `\\u202e`
      and can neither break the line, nor fail to encode, nor reorder what the reader sees;
      past `limit` characters, escapes counted as written, it is cut short (`…`);
    * any run of 15 or more digits, as a resident identity number is, keeps only its first 3
      and last 2 characters (`110*************2X`), before anything is cut;
    * a number is written as JSON writes it, unless it is long; an array or an object is
      named, not shown (it may be nested a thousand deep).
    """
    if isinstance(value, str):
        return _quoted(_DIGIT_RUN.sub(_mask_run, value), limit)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        if value.bit_length() > 4 * limit:  # never str() it: Python refuses ints of over 4,300 digits
            digits = int(value.bit_length() * 0.30103) + 1  # log10(2): right or one too many
            return f"a {'negative ' if value < 0 else ''}number of about {digits} digits"
        return _quoted(_DIGIT_RUN.sub(_mask_run, str(value)), limit)[1:-1]
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return f"an array of {len(value)} item{'' if len(value) == 1 else 's'}"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _quoted(text: str, limit: int) -> str:
    pieces = [_escaped(char) for char in text[:limit]]  # never more work than the excerpt needs
    if len(text) <= limit and sum(map(len, pieces)) <= limit:
        return "'" + "".join(pieces) + "'"
    kept, used = [], 0
    for piece in pieces:  # an escape is kept whole or not at all
        if used + len(piece) > limit - 1:
            break
        kept.append(piece)
        used += len(piece)
    return "'" + "".join(kept) + "…'"


def _escaped(char: str) -> str:
    if char == "'" or char == "\\":
        return "\\" + char
    if char.isprintable():
        return char
    return char.encode("unicode_escape").decode("ascii")


def _mask_run(match: re.Match) -> str:
    run = match.group()
    digits = len(run) - run.count(" ") - run.count("-") - (run[-1] in "Xx")  # the run holds nothing else
    if digits < _ID_DIGITS:
        return run
    return run[:3] + "*" * (len(run) - 5) + run[-2:]


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
    "excerpt",
]
