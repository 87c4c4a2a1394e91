"""What every request handler shares: the registry, who is calling, limits, idempotency, JSON out."""

from __future__ import annotations

import asyncio
import functools
import hashlib
import json
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from fastapi import Header, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.responses import Response

from ..errors import ErrorKind, InvalidInput, SocialCreditError, Unauthenticated
from ..registry import Registry
from ..registry.idempotency import Claim, Completion, InFlight, Stored
from ..registry.principals import Principal
from .batching import DecisionBatcher
from .limits import Limiter
from .problems import from_error
from .settings import ApiSettings

JSON = "application/json"
bearer = HTTPBearer(auto_error=False, scheme_name="ApiKey", bearerFormat="sc_<id>_<secret>",
                    description="An API key from `socialcredit principal add`, as `Authorization: Bearer sc_…`.")


class Malformed(InvalidInput):
    """The request itself cannot be read (not JSON, not UTF-8): 400, not 422."""


class UnsupportedMedia(InvalidInput):
    """A body of a media type this endpoint does not take: 415."""


class Context:
    def __init__(self, settings: ApiSettings, registry: Registry, limiter: Limiter):
        self.settings = settings
        self.registry = registry
        self.gateway = registry.gateway
        self.principals = registry.principals
        self.idempotency = registry.idempotency
        self.limiter = limiter
        self.decisions = DecisionBatcher(self.gateway)


def context(request: Request) -> Context:
    return request.app.state.context


def instance(request: Request) -> str:
    """The problem's `instance`: the route's template, never the path as sent (which could hold
    what a client should not have put in a URL)."""
    route = request.scope.get("route")
    return getattr(route, "path", None) or "(no route)"


encode = json.JSONEncoder(ensure_ascii=False).encode  # json.dumps(data, ensure_ascii=False), made once


def ok(result, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    data = result.to_dict() if hasattr(result, "to_dict") else result
    return Response(encode(data), status_code=status, media_type=JSON, headers=headers)


_POOL = ThreadPoolExecutor(max_workers=32, thread_name_prefix="socialcredit-api")


async def call(function, *args, **kwargs):
    """Run a blocking registry call on the thread pool (the event loop never waits for the disk).

    asyncio's own executor hand-off: cheaper per call than anyio's, and enough threads for
    concurrent decisions to share commits (group commit).
    """
    loop = asyncio.get_running_loop()
    if kwargs:
        return await loop.run_in_executor(_POOL, functools.partial(function, *args, **kwargs))
    return await loop.run_in_executor(_POOL, function, *args)


async def authenticated(request: Request, credentials: HTTPAuthorizationCredentials | None = Security(bearer)
                        ) -> Principal:
    """The principal of the request's key (401 without a valid one), rate limited per principal."""
    ctx = context(request)
    if credentials is None:
        raise Unauthenticated("this endpoint needs an API key: send Authorization: Bearer sc_<id>_<secret>")
    key = credentials.credentials
    principal = ctx.principals.cached(key)
    if principal is None:
        principal = await call(ctx.principals.authenticate, key)
    request.scope.setdefault("state", {})["principal"] = principal.name
    await ctx.limiter.take(principal.name, principal.role)
    return principal


async def anonymous(request: Request) -> None:
    """A public endpoint: no key needed; rate limited per client address."""
    ctx = context(request)
    client = request.client.host if request.client else "unknown"
    await ctx.limiter.take(client, "anonymous")


async def purpose_header(purpose: str | None = Header(None, alias="Audit-Purpose", max_length=200,
                                                description="Why this read or decision is made: kept in the audit "
                                                            "log.")) -> str | None:
    return purpose


def fingerprint(request: Request, body: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(request.method.encode())
    digest.update(b"\0" + request.url.path.encode())
    digest.update(b"\0" + "&".join(sorted(request.url.query.split("&"))).encode())
    digest.update(b"\0" + body)
    return digest.hexdigest()


_FINAL = {ErrorKind.INVALID_INPUT, ErrorKind.NOT_FOUND, ErrorKind.CONFLICT, ErrorKind.FORBIDDEN, ErrorKind.TAMPERED}


def stored(response: Response) -> Stored:
    """A response as an idempotency record keeps it (its status, media type and body)."""
    return Stored(response.status_code, response.media_type or JSON, bytes(response.body).decode("utf-8"))


class Answer:
    """How a write's result becomes its response and, under an Idempotency-Key, its stored one.

    The write is handed `in_commit` (or, for a decision, `completion`): it makes the response
    from its result and stores it in the write's own transaction, so the two commit together.
    Without a key both are None and nothing more is written. `response` is the very response
    that was stored, if one was; or, with `keep`, what `render` makes, while `keep` makes what
    a retry is given instead (an answer holding a secret that must not be kept).
    """

    def __init__(self, claim: Claim | None, render: Callable[[Any], Response],
                 keep: Callable[[Any], Response] | None = None):
        self._claim = claim
        self._render = render
        self._keep = keep
        self._made: Response | None = None
        self.in_commit = None if claim is None else self._store
        self.completion = None if claim is None else self._completion

    def _make(self, result) -> Response:
        self._made = self._render(result)
        return self._made if self._keep is None else self._keep(result)

    def _store(self, tx, result) -> None:  # tx: the write's own transaction
        self._claim.store(tx, stored(self._make(result)))

    def _completion(self, result) -> Completion:
        return self._claim.completion(stored(self._make(result)))

    def response(self, result) -> Response:
        return self._made if self._made is not None else self._render(result)


async def idempotent(request: Request, principal: Principal,
                     produce: Callable[[Claim | None], Awaitable[Response]]) -> Response:
    """Run `produce` once per (principal, Idempotency-Key); a retry gets the stored response.

    `produce` is given the key's claim (None without a key): a write stores its response in
    its own transaction through an `Answer` on it. The response of one that did not (a read, a
    refusal, a write that wrote nothing) is stored here, afterwards. Outcomes that a retry
    could change (busy, rate limited, a server fault) are not stored: the key is released and
    the same request may come again.
    """
    key = request.headers.get("idempotency-key")
    if key is None:
        return await produce(None)
    ctx = context(request)
    ctx.idempotency.check_key(key)
    body = await request.body()
    claim = await call(ctx.idempotency.begin, principal.name, key, fingerprint(request, body))
    if isinstance(claim, Stored):
        return Response(claim.body, status_code=claim.status, media_type=claim.content_type,
                        headers={"Idempotent-Replayed": "true"})
    try:
        response = await produce(claim)
    except SocialCreditError as exc:
        if exc.kind in _FINAL and not isinstance(exc, InFlight):
            response = from_error(exc, instance(request))
        else:
            await call(ctx.idempotency.release, principal.name, key)
            raise
    except BaseException:
        await call(ctx.idempotency.release, principal.name, key)
        raise
    if response.status_code >= 500 or response.status_code == 429:
        await call(ctx.idempotency.release, principal.name, key)
        return response
    if not claim.answered:
        await call(ctx.idempotency.complete, claim, stored(response))
    return response
