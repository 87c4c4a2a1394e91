"""Principals: who may call the service, in which role, with which grants, and their keys.

A key is `sc_<id>_<secret>`: 64 random bits of public id (what logs and lists may show), then
256 random bits of secret. It is printed once, when the principal is created, and stored only
as an Argon2id hash (argon2-cffi; OWASP's parameters: 19 MiB, 2 passes, 1 lane).

Checking a key with Argon2 costs tens of milliseconds of CPU, by design. So a process checks
a key once, then keeps a fast proof of it in memory: an HMAC of the key under a secret that
only this process holds (keyed BLAKE2b). A later request with the same key costs one such MAC. Every
`RECHECK_S` seconds the proof is checked against the database again, so a key revoked by any
process stops working within a second in every other one. Failed keys are remembered too
(briefly), so that a wrong key sent again and again does not cost an Argon2 hash each time.

Adding and revoking principals is audited (`principal.add`, `principal.revoke`) in the same
transaction as the change.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import NamedTuple

from ..errors import Conflict, Forbidden, InvalidInput, NotFound, Unauthenticated
from ..instants import format_instant, now_us
from ..intake.identity import identifier_in
from ..results import Result
from ..store import Store, Tx
from ..store.principals import PrincipalRow, PrincipalsTable
from .audit import audit_row
from .caller import Caller

ROLES = ("provider", "service", "subject", "reviewer", "auditor", "admin")
GRANTED_ROLES = {"provider": "event types", "service": "services"}  # the roles whose grants say what they may do
KEY_PREFIX = "sc_"
RECHECK_S = 0.5  # how old a key's proof may be before the database is asked about it again
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,99}$")
_PATTERN = re.compile(r"^(\*|[a-z0-9_*]+(\.[a-z0-9_*]+)*)$")
_KEY = re.compile(r"^sc_([0-9a-f]{16})_([A-Za-z0-9_-]{22,128})$")
_FAILED_CAPACITY = 10_000
_FAILED_TTL_S = 60.0


# -- results -----------------------------------------------------------------------------------


@dataclass(slots=True, frozen=True)
class PrincipalView(Result):
    """A principal as an admin sees it: never its key, only the key's public id."""

    name: str
    role: str
    grants: list[str]
    bound_to_subject: bool  # a subject key (its pseudonym is shown to auditors only, in the audit log)
    key_id: str
    created_at: str
    created_by: str
    revoked_at: str | None
    revoked_by: str | None


@dataclass(slots=True, frozen=True)
class PrincipalCreated(Result):
    """A new principal and its key: shown this once, stored only as a hash."""

    principal: PrincipalView
    api_key: str


@dataclass(slots=True, frozen=True)
class PrincipalList(Result):
    principals: list[PrincipalView]


# -- principals --------------------------------------------------------------------------------


class Principal(NamedTuple):
    """An authenticated caller of the service."""

    name: str
    role: str
    grants: tuple[str, ...]
    subject: str | None  # the pseudonym a subject key is bound to
    key_id: str

    def caller(self, purpose: str | None = None) -> Caller:
        return Caller(self.name, self.role, purpose)

    def granted(self, name: str) -> bool:
        """Does one of the grants match this event type or service?"""
        return any(grant_matches(grant, name) for grant in self.grants)


def grant_matches(grant: str, name: str) -> bool:
    """`*` matches anything; `finance.*` every name under finance; `court.judgment_*` any name
    that starts so; a name without `*` only itself."""
    return fnmatchcase(name, grant)


def check_grant(grant: str, role: str) -> str:
    if not isinstance(grant, str) or not _PATTERN.match(grant):
        raise InvalidInput(f"grant {grant!r} is not a pattern of dotted lower-case words with * wildcards "
                           f"(e.g. finance.* or transport.rail.*)")
    return grant


def check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise InvalidInput(f"principal name {name!r} must be 1 to 100 characters: lower-case letters, digits, "
                           "'.', '_' or '-', starting with a letter or digit")
    if identifier_in(name) is not None:
        raise InvalidInput("a principal's name is stored and shown in clear: it may not contain a resident ID or "
                           "an organization's code")
    return name


def _view(row: PrincipalRow) -> PrincipalView:
    return PrincipalView(row.name, row.role, json.loads(row.grants), row.subject is not None, row.key_id,
                         format_instant(row.created_us), row.created_by,
                         None if row.revoked_us is None else format_instant(row.revoked_us), row.revoked_by)


def _principal(row: PrincipalRow) -> Principal:
    return Principal(row.name, row.role, tuple(json.loads(row.grants)), row.subject, row.key_id)


class _Proof:
    __slots__ = ("digest", "principal", "checked")

    def __init__(self, digest: bytes, principal: Principal, checked: float):
        self.digest = digest
        self.principal = principal
        self.checked = checked


class Principals:
    def __init__(self, store: Store, pseudonym: Callable[[str, str], str]):
        from argon2 import PasswordHasher, Type

        self._store = store
        self.table = PrincipalsTable(store.db)
        self._pseudonym = pseudonym
        # OWASP Password Storage Cheat Sheet: Argon2id, m=19 MiB, t=2, p=1.
        self._hasher = PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1, hash_len=32, salt_len=16,
                                      type=Type.ID)
        self._secret = secrets.token_bytes(32)  # this process's own: proofs mean nothing elsewhere
        self._proofs: dict[str, _Proof] = {}
        self._failed: OrderedDict[bytes, float] = OrderedDict()
        self._checking: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.recheck_s = RECHECK_S
        self.argon2_checks = 0  # how many keys this process has checked the slow way (tests hold it down)

    # -- managing ------------------------------------------------------------------------------

    def add(self, name: str, role: str, *, grants: Sequence[str] = (), subject: str | None = None,
            kind: str = "person", caller: Caller,
            in_commit: Callable[[Tx, PrincipalCreated], None] | None = None) -> PrincipalCreated:
        """A new principal and its key (returned once). A subject key is bound to `subject`.

        `in_commit` is called with the new principal in the transaction that writes it: what it
        writes commits with the principal."""
        check_name(name)
        if role not in ROLES:
            raise InvalidInput(f"role {role!r} is not one of {', '.join(ROLES)}")
        grants = [check_grant(g, role) for g in grants]
        if role in GRANTED_ROLES and not grants:
            raise InvalidInput(f"a {role} needs at least one --grant: a pattern of the {GRANTED_ROLES[role]} it may "
                               f"use (e.g. {'finance.*' if role == 'provider' else 'transport.rail.*'})")
        if role not in GRANTED_ROLES and grants:
            raise InvalidInput(f"grants are for providers (event types) and services (services), not a {role}")
        if (role == "subject") != (subject is not None):
            raise InvalidInput("a subject key is bound to one subject: give --subject REF with --role subject "
                               "(and only then)")
        pseudonym = None if subject is None else self._pseudonym(subject, kind)
        key_id = secrets.token_hex(8)
        key = f"{KEY_PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
        digest = self._hasher.hash(key)
        now = now_us()
        row = PrincipalRow(name, role, json.dumps(grants), pseudonym, key_id, digest, now, caller.principal, None,
                           None, now)
        with self._store.db.write() as tx:
            if not self.table.insert(tx, row):
                raise Conflict(f"principal {name!r} already exists (names are never reused: the audit log "
                               "names them)")
            self._store.audit.insert(tx, [audit_row(caller, "principal.add", pseudonym,
                                                    {"name": name, "role": role, "grants": grants,
                                                     "key_id": key_id}, at_us=now)])
            created = PrincipalCreated(_view(row), key)
            if in_commit is not None:
                in_commit(tx, created)
        return created

    def revoke(self, name: str, *, caller: Caller) -> PrincipalView:
        """The principal's key stops working (within a second in every process); the row stays."""
        now = now_us()
        with self._store.db.write() as tx:
            row = self.table.get(name, tx)
            if row is None:
                raise NotFound(f"no principal {name!r}")
            if row.revoked_us is not None:
                raise Conflict(f"principal {name!r} was already revoked on {format_instant(row.revoked_us)}")
            self.table.revoke(tx, name, now, caller.principal)
            self._store.audit.insert(tx, [audit_row(caller, "principal.revoke", row.subject,
                                                    {"name": name, "role": row.role, "key_id": row.key_id},
                                                    at_us=now)])
        self._proofs.pop(row.key_id, None)
        return _view(row._replace(revoked_us=now, revoked_by=caller.principal, changed_us=now))

    def list(self) -> PrincipalList:
        return PrincipalList([_view(row) for row in self.table.all()])

    def get(self, name: str) -> PrincipalView:
        row = self.table.get(name)
        if row is None:
            raise NotFound(f"no principal {name!r}")
        return _view(row)

    # -- authenticating ------------------------------------------------------------------------

    def cached(self, key: str) -> Principal | None:
        """The principal of a key this process has checked in the last `recheck_s` seconds, or None
        (then `authenticate`, which may read the database and hash)."""
        match = _KEY.match(key)
        if match is None:
            return None
        proof = self._proofs.get(match.group(1))
        if proof is None or time.monotonic() - proof.checked >= self.recheck_s:
            return None
        if not hmac.compare_digest(proof.digest, self._digest(key)):
            return None
        return proof.principal

    def authenticate(self, key: str) -> Principal:
        """The principal of a key, or Unauthenticated (malformed, unknown, wrong or revoked)."""
        match = _KEY.match(key) if isinstance(key, str) else None
        if match is None:
            raise Unauthenticated("the API key is malformed: expected sc_<id>_<secret>, as `socialcredit principal "
                                  "add` printed it")
        key_id = match.group(1)
        digest = self._digest(key)
        proof = self._proofs.get(key_id)
        now = time.monotonic()
        if proof is not None and hmac.compare_digest(proof.digest, digest):
            if now - proof.checked < self.recheck_s:
                return proof.principal
            exists, revoked = self.table.revoked_us(proof.principal.name)
            if exists and revoked is None:
                proof.checked = now
                return proof.principal
            self._proofs.pop(key_id, None)
            raise Unauthenticated(f"API key {key_id} has been revoked")
        self._refuse_if_failed(digest, now)
        # Many requests with a key this process has not checked yet: one Argon2 hash, the
        # others wait for it and use its proof.
        with self._lock:
            checking = self._checking.setdefault(key_id, threading.Lock())
        with checking:
            proof = self._proofs.get(key_id)
            if proof is not None and hmac.compare_digest(proof.digest, digest):
                return proof.principal
            return self._check(key, key_id, digest, now)

    def _check(self, key: str, key_id: str, digest: bytes, now: float) -> Principal:
        row = self.table.by_key_id(key_id)
        if row is None:
            self._remember_failure(digest, now)
            raise Unauthenticated(f"API key {key_id} is not known to this registry")
        if row.revoked_us is not None:
            self._remember_failure(digest, now)
            raise Unauthenticated(f"API key {key_id} has been revoked")
        if not self._verify(row.key_hash, key):
            self._remember_failure(digest, now)
            raise Unauthenticated(f"API key {key_id}: wrong secret")
        principal = _principal(row)
        self._proofs[key_id] = _Proof(digest, principal, time.monotonic())
        return principal

    def _verify(self, encoded: str, key: str) -> bool:
        from argon2.exceptions import InvalidHashError, VerificationError

        self.argon2_checks += 1
        try:
            return self._hasher.verify(encoded, key)
        except (VerificationError, InvalidHashError):
            return False

    def _digest(self, key: str) -> bytes:
        # Keyed BLAKE2b: a MAC like HMAC, computed without OpenSSL's per-call setup (a tenth of the cost).
        return hashlib.blake2b(key.encode("utf-8"), key=self._secret, digest_size=32).digest()

    def _refuse_if_failed(self, digest: bytes, now: float) -> None:
        with self._lock:
            failed = self._failed.get(digest)
            if failed is not None and now - failed < _FAILED_TTL_S:
                # The same wrong key again: refused without another Argon2 hash. A key revoked
                # meanwhile stays refused; a principal created meanwhile has a new key anyway.
                raise Unauthenticated("this API key was refused a moment ago (unknown, wrong or revoked)")

    def _remember_failure(self, digest: bytes, now: float) -> None:
        with self._lock:
            self._failed[digest] = now
            self._failed.move_to_end(digest)
            while len(self._failed) > _FAILED_CAPACITY:
                self._failed.popitem(last=False)


def require_role(principal: Principal, *roles: str, doing: str) -> None:
    if principal.role not in roles:
        allowed = " or ".join(roles)
        raise Forbidden(f"{doing} is for a{'n' if allowed[0] in 'aeiou' else ''} {allowed} key; this key "
                        f"({principal.name}) is a {principal.role}'s")
