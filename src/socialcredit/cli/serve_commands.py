"""`socialcredit serve`: the registry as an HTTP service (FastAPI under uvicorn)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from ..errors import InvalidInput, excerpt
from ..registry import Registry
from .app import app, err, handles_errors, settings

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")

APP = "socialcredit.api:create_app"  # the factory, by name: each worker process makes its own app


@app.command()
@handles_errors
def serve(
    host: Annotated[str, typer.Option("--host", envvar="SOCIALCREDIT_API_HOST", help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", envvar="SOCIALCREDIT_API_PORT", help="Port to listen on.")] = 8000,
    workers: Annotated[int, typer.Option("--workers", min=1, envvar="SOCIALCREDIT_API_WORKERS", help="Worker processes; with more than one, rate limits are shared through Redis (SOCIALCREDIT_REDIS_URL).")] = 1,
    log_level: Annotated[str, typer.Option("--log-level", help="critical, error, warning, info or debug.")] = "info",
):
    """Serve the HTTP API over the registry at --db: /v1 (OpenAPI at /v1/openapi.json, docs at /v1/docs), /healthz, /readyz.

    Settings also come from SOCIALCREDIT_* variables (SOCIALCREDIT_API_MAX_BODY,
    SOCIALCREDIT_API_MAX_BATCH, SOCIALCREDIT_API_RATE_LIMITS, SOCIALCREDIT_API_BURST_SECONDS,
    SOCIALCREDIT_API_RATE_BACKEND, SOCIALCREDIT_REDIS_URL, SOCIALCREDIT_IDEMPOTENCY_LEASE). Callers
    need an API key from `socialcredit principal add`. The access log names routes, never paths
    with queries or bodies.
    """
    import uvicorn

    level = log_level.lower()
    if level not in LOG_LEVELS:
        raise InvalidInput(f"--log-level must be one of {', '.join(LOG_LEVELS)}, got {excerpt(log_level)}")
    Registry.open(settings.db, key_file=settings.key_file).close()  # a wrong --db fails here, in one line
    os.environ["SOCIALCREDIT_DB"] = settings.db
    if settings.key_file is not None:
        os.environ["SOCIALCREDIT_KEY_FILE"] = str(settings.key_file)
    os.environ["SOCIALCREDIT_API_WORKERS"] = str(workers)
    err.print(f"serving {settings.db} on http://{host}:{port}/v1 with {workers} worker(s)", highlight=False,
              markup=False)
    uvicorn.run(APP, factory=True, host=host, port=port, workers=workers, log_level=level, access_log=False,
                log_config=_log_config(level), proxy_headers=False, server_header=False)


def _log_config(level: str) -> dict:
    from uvicorn.config import LOGGING_CONFIG

    config = {**LOGGING_CONFIG, "loggers": dict(LOGGING_CONFIG["loggers"]), "formatters": dict(LOGGING_CONFIG["formatters"]),
              "handlers": dict(LOGGING_CONFIG["handlers"])}
    # The service's own lines (the access log: one a request): a formatter that does not copy each
    # record, and one write per turn of the event loop (logs.py).
    config["formatters"]["socialcredit"] = {"()": "socialcredit.api.logs.LineFormatter"}
    config["handlers"]["socialcredit"] = {"formatter": "socialcredit", "class": "socialcredit.api.logs.TurnHandler",
                                          "stream": "ext://sys.stderr"}
    # At --log-level warning or above, no line a request (the access log is INFO), as uvicorn's own.
    config["loggers"]["socialcredit.api"] = {"handlers": ["socialcredit"], "level": level.upper(), "propagate": False}
    return config
