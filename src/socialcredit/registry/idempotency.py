"""Idempotency keys, as the best payment APIs keep them.

A write request may carry a key of the caller's choosing. The first request under a key
claims it (a `pending` record holding the request's fingerprint and a lease); its response
is stored with the record. Then, under the same principal and key:

    same fingerprint, done        the stored response again; nothing more is written
    same fingerprint, pending     Conflict (in flight: try again in a moment)
    another fingerprint           InvalidInput, nothing written: a key names one request

The response of a request whose work writes is stored by the work itself, in the work's own
transaction (a `Claim`: `store` for a write of its own, `completion` for a row that rides in
the decision log's group commit): the work and its stored response commit together or not at
all. So a process that dies at any moment leaves one of two things behind: nothing written
and the record pending (a retry does the work, once), or the work and its response both
committed (a retry gets the response and writes nothing). A request whose work writes
nothing (a refusal, a read, a duplicate) has its response stored afterwards, on its own.

A response that says "try again" (busy, rate limited, a server fault) is not stored: the
record is released, and the same request may be sent again under the same key.

A process that dies with a request in flight leaves its record pending. A retry takes it
over at once when its owner is known to be gone (a process on this host that no longer
runs), or else once the lease (`SOCIALCREDIT_IDEMPOTENCY_LEASE`, default 60 s) has run out.
"""

from __future__ import annotations

import os
import re
import secrets
import socket
import time
from typing import NamedTuple

from ..errors import Conflict, InvalidInput
from ..instants import US_PER_SECOND, now_us
from ..store import Store, Tx
from ..store.principals import IdempotencyRow, IdempotencyTable

DEFAULT_LEASE_S = 60.0
RETENTION_US = 24 * 3600 * US_PER_SECOND  # records are kept a day
_SWEEP_EVERY_S = 600.0
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")


class InFlight(Conflict):
    """Another request under this idempotency key is still being processed."""

    def __init__(self, message: str, retry_after_s: float = 1.0):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Stored(NamedTuple):
    status: int
    content_type: str
    body: str


class Completion(NamedTuple):
    """A claimed key's response, as the row that marks its record done."""

    principal: str
    key: str
    owner: str
    status: int
    content_type: str
    body: str


class Claim:
    """A key held by the request in flight under it: its response goes in with its work.

    `answered` says the response went into the work's transaction: once the work has
    returned, the two are committed.
    """

    def __init__(self, table: IdempotencyTable, principal: str, key: str, owner: str):
        self._table = table
        self.principal = principal
        self.key = key
        self.owner = owner
        self.answered = False

    def completion(self, response: Stored) -> Completion:
        """The row to write in the work's transaction (the decision log's group commit writes it)."""
        self.answered = True
        return Completion(self.principal, self.key, self.owner, *response)

    def store(self, tx: Tx, response: Stored) -> None:
        """Store the response in `tx`, the transaction of the work it answers."""
        self._table.complete_many(tx, [self.completion(response)], now_us())


def lease_from_env() -> float:
    text = os.environ.get("SOCIALCREDIT_IDEMPOTENCY_LEASE", "")
    if not text:
        return DEFAULT_LEASE_S
    try:
        value = float(text)
    except ValueError:
        raise InvalidInput(f"SOCIALCREDIT_IDEMPOTENCY_LEASE must be a number of seconds, got {text!r}") from None
    if value <= 0:
        raise InvalidInput(f"SOCIALCREDIT_IDEMPOTENCY_LEASE must be positive, got {text!r}")
    return value


class Idempotency:
    def __init__(self, store: Store, lease_s: float | None = None):
        self._store = store
        self.table = IdempotencyTable(store.db)
        self.lease_s = lease_from_env() if lease_s is None else lease_s
        self._host = socket.gethostname()[:40]
        self.owner = f"{self._host}:{os.getpid()}:{secrets.token_hex(6)}"
        self._swept = 0.0

    @staticmethod
    def check_key(key: str) -> str:
        if not _KEY.match(key):
            raise InvalidInput("Idempotency-Key must be 1 to 255 visible ASCII characters (a UUID is a good one)")
        return key

    def begin(self, principal: str, key: str, fingerprint: str) -> Claim | Stored:
        """Claim the key for this request (go ahead), or the stored response of the same request."""
        self.check_key(key)
        now = now_us()
        lease_until = now + int(self.lease_s * US_PER_SECOND)
        with self._store.db.write() as tx:
            self._sweep(tx, now)
            claim = Claim(self.table, principal, key, self.owner)
            if self.table.claim(tx, principal, key, fingerprint, self.owner, lease_until, now):
                return claim
            row = self.table.get(tx, principal, key)
            if row is None:  # released between the two statements (PostgreSQL): claim it again
                if self.table.claim(tx, principal, key, fingerprint, self.owner, lease_until, now):
                    return claim
                raise InFlight(f"Idempotency-Key {key!r} is in use by a request in flight; try again")
            if row.fingerprint != fingerprint:
                raise InvalidInput(f"Idempotency-Key {key!r} was used for a different request (another body, "
                                   "method or path); use a new key for a new request")
            if row.state == "done":
                return Stored(row.status, row.content_type, row.response)
            if self._owner_gone(row, now) and self.table.take_over(tx, principal, key, row.owner, self.owner,
                                                                    lease_until):
                return claim
            # On this host the owner's end is seen at once; elsewhere only the lease tells.
            local = row.owner.startswith(self._host + ":")
            wait = 1.0 if local else max(1.0, (row.lease_until_us - now) / US_PER_SECOND)
            raise InFlight(f"a request under Idempotency-Key {key!r} is still in flight; try again in a moment",
                           retry_after_s=wait)

    def complete(self, claim: Claim, response: Stored) -> None:
        """Store the response of a request whose work wrote nothing, in a transaction of its own."""
        with self._store.db.write() as tx:
            claim.store(tx, response)

    def release(self, principal: str, key: str) -> None:
        with self._store.db.write() as tx:
            self.table.release(tx, principal, key, self.owner)

    def _owner_gone(self, row: IdempotencyRow, now: int) -> bool:
        if row.lease_until_us <= now:
            return True
        host, _, rest = row.owner.partition(":")
        pid_text, _, token = rest.partition(":")
        if host != self._host or not pid_text.isdigit():
            return False  # another machine's: only its lease tells
        if row.owner == self.owner:
            return False  # in flight in this very process
        pid = int(pid_text)
        if pid == os.getpid():
            return True  # an earlier process with this pid: it is gone
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def _sweep(self, tx, now: int) -> None:
        clock = time.monotonic()
        if clock - self._swept < _SWEEP_EVERY_S:
            return
        self._swept = clock
        self.table.expire(tx, now - RETENTION_US)
