"""The HTTP service: a FastAPI app over one shared `Registry`.

    create_app()      the app factory (`uvicorn --factory socialcredit.api:create_app`,
                      `socialcredit serve`); tests and other servers mount it
    settings.py       flags and SOCIALCREDIT_* variables (pydantic-settings)
    context.py        who is calling (keys → principals), idempotency, JSON out
    routes.py         the endpoints, under /v1; /healthz and /readyz beside them
    problems.py       errors as application/problem+json, by kind
    limits.py         body size (413) and rate limits (token buckets; Redis with many workers)
    models.py         request bodies (unknown fields refused)

A front door: each request's key becomes a `Principal`, the gateway (registry/gateway.py)
decides what it may do, and results serialize with `to_dict()`, as the CLI's `--json`.

Nothing here logs a request's path with its query, or any body: the access log names the
route's template (`/v1/subjects/{pseudonym}/standing`), the status, the time and the principal.
"""

from __future__ import annotations

import gc
import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

import socialcredit
from ..errors import SocialCreditError
from ..registry import Registry
from .context import Context, Malformed, UnsupportedMedia, instance
from .lean import PATH as LEAN_PATH, LeanDecisions
from .limits import BodyLimit, Limiter
from .problems import Problem, RateLimited, TITLES, from_error, problem, validation_detail
from .settings import ApiSettings

access_log = logging.getLogger("socialcredit.api.access")


def create_app(settings: ApiSettings | None = None, registry: Registry | None = None) -> FastAPI:
    """The app. Without `registry` it opens one at startup (from `settings`, else the
    environment) and closes it at shutdown; a given registry is the caller's to close."""
    settings = settings or ApiSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        own = registry is None
        opened = Registry.open(settings.db, key_file=settings.key_file) if own else registry
        limiter = Limiter(settings.rates(), settings.api_burst_seconds,
                          settings.redis_url if settings.shared_limits() else None)
        app.state.context = Context(settings, opened, limiter)
        if own:
            # A server's process: what it holds from now on (policies, caches, the registry)
            # lives as long as it does; out of the cyclic collector's way, its passes stay short.
            gc.freeze()
            # Its log records (the access log: one a request) skip what no line of it shows: the
            # caller's file and line, thread, process (the logging HOWTO's "Optimization").
            logging._srcfile = None
            logging.logThreads = logging.logProcesses = logging.logMultiprocessing = False
        try:
            yield
        finally:
            app.state.context.decisions.close()
            await limiter.close()
            if own:
                opened.close()

    app = ServiceApp(
        title="socialcredit",
        version=socialcredit.__version__,
        description="An open, auditable social credit engine as a service: providers report events, services "
                    "ask for decisions, subjects read their own record, auditors check the whole. Every read "
                    "of a subject's data and every decision is audited. Errors are application/problem+json.",
        openapi_url="/v1/openapi.json",
        docs_url="/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    from .routes import health, v1

    app.include_router(health)
    app.include_router(v1)
    _errors(app)
    _openapi_problem(app)
    app.add_middleware(BodyLimit, limit=settings.api_max_body)
    app.add_middleware(AccessLog)
    return app


class ServiceApp(FastAPI):
    """The FastAPI app, with POST /v1/decisions taken first by the lean path (lean.py), which
    hands anything but a plain request back to the app itself."""

    lean_decisions = True  # False: every request takes the full path (the tests compare the two)
    _lean: LeanDecisions | None = None

    async def __call__(self, scope, receive, send) -> None:
        if (scope["type"] == "http" and scope["path"] == LEAN_PATH and scope["method"] == "POST" and not self.root_path
                and self.lean_decisions):
            lean = self._lean
            if lean is None:
                lean = self._lean = LeanDecisions(self, super().__call__)
            await lean(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def _errors(app: FastAPI) -> None:
    @app.exception_handler(SocialCreditError)
    async def on_error(request: Request, exc: SocialCreditError):
        if isinstance(exc, Malformed):
            return problem(400, "invalid_input", str(exc), instance=instance(request))
        if isinstance(exc, UnsupportedMedia):
            return problem(415, "invalid_input", str(exc), instance=instance(request))
        return from_error(exc, instance(request))

    @app.exception_handler(RateLimited)
    async def on_rate_limited(request: Request, exc: RateLimited):
        return from_error(exc, instance(request))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError):
        status, detail = validation_detail(exc.errors())
        return problem(status, "invalid_input", detail, instance=instance(request))

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException):
        kind = {404: "not_found", 405: "invalid_input"}.get(exc.status_code, "invalid_input")
        detail = {404: f"no endpoint {request.method} at this path (see /v1/openapi.json)",
                  405: f"{request.method} is not allowed at this path (see /v1/openapi.json)"}.get(
            exc.status_code, str(exc.detail))
        return problem(exc.status_code, kind, detail, instance=instance(request),
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def on_unexpected(request: Request, exc: Exception):
        return from_error(exc, instance(request))


def _openapi_problem(app: FastAPI) -> None:
    """The Problem schema under components, for the error responses every route documents."""
    original = app.openapi

    def openapi():
        if app.openapi_schema:
            return app.openapi_schema
        schema = original()
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("Problem", Problem.model_json_schema())
        return schema

    app.openapi = openapi


class AccessLog:
    """One log line per request: method, route template, status, milliseconds, principal."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [0]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                route = scope.get("route")
                template = getattr(route, "path", None) or "(no route)"
                principal = scope.get("state", {}).get("principal", "-")
                access_log.info("%s %s %s %.1fms %s", scope.get("method"), template, status[0],
                                (time.perf_counter() - started) * 1000, principal)


__all__ = ["ApiSettings", "TITLES", "create_app"]
