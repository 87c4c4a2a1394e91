"""POST /v1/decisions without FastAPI's machinery, for the plain request.

A service's gate asks thousands of decisions a second, and FastAPI's routing, dependency
solving, body validation and Starlette's middleware cost several times the decision itself.
This path takes the request as the ASGI server hands it over, when it is the plain kind:

    a Bearer key, Content-Type application/json, no Idempotency-Key, an Audit-Purpose of
    200 characters or fewer, and a body that is a JSON object of exactly the fields
    DecisionRequest allows, of the types and lengths it allows

and does what the full path does, in the same order: the key's principal (the in-memory
proof, else one Argon2 check on the thread pool), the rate limit, the decision (committed to
the decision log with its audit record, with the other decisions of the same moment, before
the answer is sent), the same JSON bytes (`ok()`'s encoding of `to_dict()`) and headers, errors as the
same problem+json, and the access log line.

Any other request (a body that is not JSON, an unknown field, a wrong type, a missing key, an
Idempotency-Key, a body over the limit, ...) goes to the FastAPI app with the body it already
read, so every refusal and every idempotent request is exactly what the full path makes of it.
"""

from __future__ import annotations

import json
import logging
import time
from json.encoder import encode_basestring

from ..results import _plain
from .context import call, encode
from .problems import from_error

PATH = "/v1/decisions"
_FIELDS = frozenset(("subject", "kind", "at", "service"))
_KINDS = ("person", "organization")
access_log = logging.getLogger("socialcredit.api.access")


def plain_body(data: bytes) -> tuple[str, str, str, str | None] | None:
    """(subject, service, kind, at) when `data` is a body DecisionRequest would take unchanged, else None."""
    try:
        # As UTF-8 text (the full path takes UTF-16 and a BOM too: those go there).
        value = json.loads(data.decode("utf-8"))
    except Exception:  # noqa: BLE001 - the full path names the fault
        return None
    if type(value) is not dict or not value.keys() <= _FIELDS:
        return None
    subject = value.get("subject")
    service = value.get("service")
    kind = value.get("kind", "person")
    at = value.get("at")
    if (type(subject) is not str or not 1 <= len(subject) <= 200 or type(service) is not str
            or not 1 <= len(service) <= 120 or (kind != "person" and kind != "organization") or type(kind) is not str
            or (at is not None and (type(at) is not str or len(at) > 40))):
        return None
    return subject, service, kind, at


_POLICIES: dict = {}  # a PolicyRef's JSON by its values (a process meets few policies)


def decision_json(d) -> str:
    """`encode(d.to_dict())` of a ServiceDecision, the same text, made directly: its fields in
    their order, the policy's JSON made once. Anything of an unexpected type takes the general way."""
    if (type(d.decision_id) is not str or type(d.allowed) is not bool or type(d.effect) is not str
            or type(d.service) is not str or type(d.at) is not str or type(d.ledger_size) is not int
            or type(d.service_known) is not bool):
        return encode(d.to_dict())
    ref = d.policy
    key = (type(ref), ref.id, ref.version, ref.digest, ref.timezone)
    policy = _POLICIES.get(key)
    if policy is None:
        policy = encode(_plain(ref))
        if len(_POLICIES) < 64:
            _POLICIES[key] = policy
    measures = encode(_plain(d.measures)) if d.measures else "[]"
    reasons = encode(_plain(d.reasons)) if d.reasons else "[]"
    return (f'{{"decision_id": {encode_basestring(d.decision_id)}, "allowed": {"true" if d.allowed else "false"}, '
            f'"effect": {encode_basestring(d.effect)}, "service": {encode_basestring(d.service)}, '
            f'"at": {encode_basestring(d.at)}, "measures": {measures}, "reasons": {reasons}, "policy": {policy}, '
            f'"ledger_size": {d.ledger_size}, "service_known": {"true" if d.service_known else "false"}}}')


class LeanDecisions:
    """The ASGI handler for POST /v1/decisions; `full` is the FastAPI app's own call."""

    def __init__(self, app, full):
        self.app = app
        self.full = full

    async def __call__(self, scope, receive, send) -> None:
        started = time.perf_counter()
        authorization = content_type = purpose = None
        declared = -1
        for name, value in scope["headers"]:
            if name == b"authorization":
                if authorization is None:
                    authorization = value
            elif name == b"content-type":
                if content_type is None:
                    content_type = value
            elif name == b"audit-purpose":
                if purpose is None:
                    purpose = value
            elif name == b"content-length":
                if declared == -1:
                    try:
                        declared = int(value)
                    except ValueError:
                        declared = -2
            elif name == b"idempotency-key":
                return await self.full(scope, receive, send)
        context = getattr(self.app.state, "context", None)
        if (context is None or authorization is None or content_type is None
                or declared > context.settings.api_max_body):
            return await self.full(scope, receive, send)
        # Read the body (as far as the limit: what is over it the full path refuses with 413).
        messages = []
        chunks = []
        size = 0
        limit = context.settings.api_max_body
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                return await self.full(scope, _replay(messages, receive), send)
            chunk = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            if size > limit:
                return await self.full(scope, _replay(messages, receive), send)
            if not message.get("more_body", False):
                break
        body = chunks[0] if len(chunks) == 1 else b"".join(chunks)
        request = self._plain(authorization, content_type, purpose, body)
        if request is None:
            return await self.full(scope, _replay(messages, receive), send)
        key, purpose_text, (subject, service, kind, at) = request
        status = 500
        principal_name = "-"
        try:
            principals = context.principals
            principal = principals.cached(key)
            if principal is None:
                principal = await call(principals.authenticate, key)
            principal_name = principal.name
            scope.setdefault("state", {})["principal"] = principal_name
            await context.limiter.take(principal_name, principal.role)
            decision = await context.decisions.decide(principal, subject, service, kind, at, purpose_text)
            data = decision_json(decision).encode("utf-8")
            status = 201
            await send({"type": "http.response.start", "status": 201, "headers": [
                (b"location", f"/v1/decisions/{decision.decision_id}".encode("latin-1")),
                (b"content-length", str(len(data)).encode("latin-1")),
                (b"content-type", b"application/json"),
            ]})
            await send({"type": "http.response.body", "body": data})
        except Exception as exc:  # noqa: BLE001 - each becomes its problem+json, as the full path's handlers do
            response = from_error(exc, PATH)
            status = response.status_code
            await response(scope, _replay(messages, receive), send)
        finally:
            if access_log.isEnabledFor(logging.INFO):
                access_log.info("%s %s %s %.1fms %s", "POST", PATH, status,
                                (time.perf_counter() - started) * 1000, principal_name)

    @staticmethod
    def _plain(authorization: bytes, content_type: bytes, purpose: bytes | None, body: bytes):
        """(key, purpose, body fields) of a plain request, else None."""
        text = authorization.decode("latin-1")
        scheme, _, key = text.partition(" ")
        key = key.strip()
        if not key or scheme.lower() != "bearer":
            return None
        if content_type.decode("latin-1").partition(";")[0].strip().lower() != "application/json":
            return None
        purpose_text = None
        if purpose is not None:
            purpose_text = purpose.decode("latin-1")
            if len(purpose_text) > 200:
                return None
        fields = plain_body(body)
        if fields is None:
            return None
        return key, purpose_text, fields


def _replay(messages: list, receive):
    """A receive that gives back what was already read, then goes on with the connection's own."""
    pending = list(messages)

    async def replay():
        if pending:
            return pending.pop(0)
        return await receive()

    return replay


__all__ = ["LeanDecisions", "PATH", "decision_json", "plain_body"]
