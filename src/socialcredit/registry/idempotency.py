"""Idempotency keys, as the best payment APIs keep them.

A write request may carry a key of the caller's choosing. The first request under a key
claims it (a `pending` record holding the request's fingerprint and a lease); when it is done
its response is stored with the record. Then, under the same principal and key:

    same fingerprint, done        the stored response again; nothing more is written
    same fingerprint, pending     Conflict (in flight: try again in a moment)
    another fingerprint           InvalidInput, nothing written: a key names one request

A response that says "try again" (busy, rate limited, a server fault) is not stored: the
record is released, and the same request may be sent again under the same key.

A process that dies with a request in flight leaves its record pending. A retry takes it
over at once when its owner is known to be gone (a process on this host that no longer
runs), or else once the lease (`SOCIALCREDIT_IDEMPOTENCY_LEASE`, default 60 s) has run out.
The work itself is safe to run twice: events are deduplicated by (provider, key).
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
from ..store import Store
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

    def begin(self, principal: str, key: str, fingerprint: str) -> Stored | None:
        """Claim the key for this request (None: go ahead), or the stored response of the same request."""
        self.check_key(key)
        now = now_us()
        lease_until = now + int(self.lease_s * US_PER_SECOND)
        with self._store.db.write() as tx:
            self._sweep(tx, now)
            if self.table.claim(tx, principal, key, fingerprint, self.owner, lease_until, now):
                return None
            row = self.table.get(tx, principal, key)
            if row is None:  # released between the two statements (PostgreSQL): claim it again
                if self.table.claim(tx, principal, key, fingerprint, self.owner, lease_until, now):
                    return None
                raise InFlight(f"Idempotency-Key {key!r} is in use by a request in flight; try again")
            if row.fingerprint != fingerprint:
                raise InvalidInput(f"Idempotency-Key {key!r} was used for a different request (another body, "
                                   "method or path); use a new key for a new request")
            if row.state == "done":
                return Stored(row.status, row.content_type, row.response)
            if self._owner_gone(row, now) and self.table.take_over(tx, principal, key, row.owner, self.owner,
                                                                    lease_until):
                return None
            # On this host the owner's end is seen at once; elsewhere only the lease tells.
            local = row.owner.startswith(self._host + ":")
            wait = 1.0 if local else max(1.0, (row.lease_until_us - now) / US_PER_SECOND)
            raise InFlight(f"a request under Idempotency-Key {key!r} is still in flight; try again in a moment",
                           retry_after_s=wait)

    def complete(self, principal: str, key: str, status: int, content_type: str, body: str) -> None:
        with self._store.db.write() as tx:
            self.table.complete(tx, principal, key, self.owner, status, content_type, body, now_us())

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
