"""Errors as `application/problem+json` (RFC 9457): the error's kind picks the status.

    invalid_input 422 (400: a body that is not JSON)   not_found 404   conflict 409
    forbidden 403   unauthenticated 401   unavailable 503 + Retry-After   tampered 409
    too large 413   rate limited 429 + Retry-After

`detail` is the error's one-line message, which names the place and the cause; `kind` says
which kind it is, so a client maps kinds, not messages. Extra members (an ingest result's
fields, for a refused batch) may follow.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any

from pydantic import BaseModel, ConfigDict
from starlette.responses import Response

from ..errors import ErrorKind, SocialCreditError

PROBLEM = "application/problem+json"
STATUS = {
    ErrorKind.INVALID_INPUT: 422,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.TAMPERED: 409,
}
TITLES = {
    400: "Malformed request",
    401: "Not authenticated",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    409: "Conflict",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Invalid input",
    429: "Too many requests",
    500: "Internal error",
    503: "Unavailable",
}
log = logging.getLogger("socialcredit.api")


class Problem(BaseModel):
    """An error (RFC 9457)."""

    model_config = ConfigDict(extra="allow")

    type: str
    title: str
    status: int
    detail: str
    kind: str
    instance: str | None = None


class RateLimited(Exception):
    def __init__(self, message: str, retry_after_s: float):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class TooLarge(Exception):
    pass


def problem(status: int, kind: str, detail: str, *, instance: str | None = None,
            headers: dict[str, str] | None = None, extra: dict[str, Any] | None = None) -> Response:
    body = {"type": f"urn:socialcredit:problem:{kind}", "title": TITLES.get(status, "Error"), "status": status,
            "detail": detail, "kind": kind}
    if instance is not None:
        body["instance"] = instance
    if extra:
        body.update({k: v for k, v in extra.items() if k not in body})
    return Response(json.dumps(body, ensure_ascii=False), status_code=status, media_type=PROBLEM, headers=headers)


def from_error(exc: BaseException, instance: str | None = None) -> Response:
    """The problem response for an error a request met."""
    if isinstance(exc, SocialCreditError):
        status = STATUS[exc.kind]
        headers = {}
        retry = getattr(exc, "retry_after_s", None)
        if retry is not None:
            headers["Retry-After"] = str(max(1, math.ceil(retry)))
        if exc.kind is ErrorKind.UNAUTHENTICATED:
            headers["WWW-Authenticate"] = 'Bearer realm="socialcredit"'
        return problem(status, exc.kind.value, str(exc), instance=instance, headers=headers)
    if isinstance(exc, RateLimited):
        return problem(429, "rate_limited", str(exc), instance=instance,
                       headers={"Retry-After": str(max(1, math.ceil(exc.retry_after_s)))})
    if isinstance(exc, TooLarge):
        return problem(413, "too_large", str(exc), instance=instance)
    log.exception("unexpected error", exc_info=exc)
    return problem(500, "internal", "an unexpected error; it is logged on the server (nothing more about it is "
                                    "shown here)", instance=instance)


def validation_detail(errors: list[dict]) -> tuple[int, str]:
    """(status, one line) for FastAPI's request validation errors: where, and what is wrong."""
    first = errors[0] if errors else {"loc": (), "msg": "invalid request", "type": ""}
    if first.get("type") == "json_invalid":
        return 400, f"the body is not valid JSON ({first.get('ctx', {}).get('error', 'syntax error')})"
    place = ".".join(str(part) for part in first.get("loc", ()))
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return 422, f"{place}: {first.get('msg', 'invalid')}{more}"


ERROR_RESPONSES = {
    status: {"model": Problem, "description": TITLES[status], "content": {PROBLEM: {"schema": {
        "$ref": "#/components/schemas/Problem"}}}}
    for status in (400, 401, 403, 404, 409, 413, 415, 422, 429, 503)
}
