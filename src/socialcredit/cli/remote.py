"""The CLI as a client: `--server URL --api-key KEY` sends a command to a running service.

`RemoteRegistry` answers the calls the commands make of a `Registry` (ingest, check,
standing, explain, rate) over HTTP (httpx), and turns the answers back into the same result
types, so a command prints the same output and ends with the same exit status whether it
ran on a local database or against a service. A problem+json error becomes the error of its
kind, with the server's one-line detail as its message.

A raw subject reference travels only in request bodies, never in a URL.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from ..errors import (Conflict, ErrorKind, Forbidden, InvalidInput, NotFound, SocialCreditError, Tampered,
                      Unauthenticated, Unavailable)
from ..intake.readers import InputError
from ..results import IngestProblem, IngestResult, RatingWritten

ERRORS = {
    ErrorKind.INVALID_INPUT.value: InvalidInput,
    ErrorKind.NOT_FOUND.value: NotFound,
    ErrorKind.CONFLICT.value: Conflict,
    ErrorKind.FORBIDDEN.value: Forbidden,
    ErrorKind.UNAUTHENTICATED.value: Unauthenticated,
    ErrorKind.UNAVAILABLE.value: Unavailable,
    ErrorKind.TAMPERED.value: Tampered,
}
_NOT_JSON = "__socialcredit_unreadable_line__"  # stands in for a line the client could not read
REMOTE_COMMANDS = "ingest, check, standing, explain and rate"


class RemoteRegistry:
    def __init__(self, url: str, api_key: str | None, purpose: str | None = None, timeout_s: float = 600.0):
        import httpx

        if not api_key:
            raise InvalidInput("--server needs an API key: give --api-key or set SOCIALCREDIT_API_KEY")
        headers = {"Authorization": f"Bearer {api_key}", "User-Agent": "socialcredit-cli"}
        if purpose:
            headers["Audit-Purpose"] = purpose
        self.url = url.rstrip("/")
        self._client = httpx.Client(base_url=self.url, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "RemoteRegistry":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getattr__(self, name: str):
        raise InvalidInput(f"this command works on a local registry only (--db); --server covers {REMOTE_COMMANDS}")

    # -- HTTP ----------------------------------------------------------------------------------

    def _send(self, method: str, path: str, *, allow: Iterable[int] = (), **kwargs) -> tuple[int, Any]:
        import httpx

        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.TimeoutException:
            raise Unavailable(f"{self.url}: no answer in time; the request may or may not have been carried out") \
                from None
        except httpx.HTTPError as exc:
            raise Unavailable(f"{self.url}: cannot reach the server ({exc.__class__.__name__}: {exc})") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code < 400 or response.status_code in allow:
            return response.status_code, body
        if isinstance(body, dict) and "kind" in body and "detail" in body:
            error = ERRORS.get(body["kind"])
            if error is Unavailable:
                raise Unavailable(body["detail"], float(response.headers.get("Retry-After", "1") or 1))
            if error is not None:
                raise error(body["detail"])
            if response.status_code == 429:
                raise Unavailable(body["detail"], float(response.headers.get("Retry-After", "1") or 1))
            raise SocialCreditError(body["detail"])
        raise Unavailable(f"{self.url}: the server answered {response.status_code} {response.reason_phrase}")

    # -- the commands' calls -------------------------------------------------------------------

    def ingest(self, events, *, provider: str | None = None, skip_invalid: bool = False, **_ignored) -> IngestResult:
        lines: list[int | None] = []
        batch: list[Any] = []
        unreadable: dict[int, str] = {}
        for number, item in enumerate(events, start=1):
            line, raw = item if isinstance(item, tuple) else (number, item)
            lines.append(line)
            if isinstance(raw, InputError):
                unreadable[len(batch) + 1] = raw.message
                batch.append(_NOT_JSON)  # the server refuses it as not an object; the message is ours
                continue
            if provider is not None and not raw.get("provider"):
                raw = {**raw, "provider": provider}
            batch.append(raw)
        status, body = self._send("POST", "/v1/events", params={"skip_invalid": "true" if skip_invalid else "false"},
                                  content=json.dumps(batch, ensure_ascii=False).encode("utf-8"),
                                  headers={"Content-Type": "application/json"}, allow=(403, 422))
        if status in (403, 422) and "accepted" not in body:
            raise (Forbidden if status == 403 else InvalidInput)(body["detail"])
        errors = []
        for problem in body["errors"]:
            position = problem["line"]
            message = unreadable.get(position, problem["error"]) if position is not None else problem["error"]
            line = lines[position - 1] if position is not None and 0 < position <= len(lines) else position
            errors.append(IngestProblem(line, message))
        return IngestResult(body["accepted"], body["duplicates"], body["rejected"], errors, body["ledger_size"],
                            body["root"], body["written"], body.get("folded_incrementally", 0),
                            body.get("folded_whole", 0))

    def check(self, ref: str, service: str, *, kind: str = "person", at=None, **_ignored):
        from ..registry.gateway import ServiceDecision

        _status, body = self._send("POST", "/v1/decisions", json={"subject": ref, "kind": kind, "service": service,
                                                                 "at": at})
        return _build(ServiceDecision, body)

    def standing(self, ref: str, *, kind: str = "person", at=None, known_at: int | None = None, **_ignored):
        from ..results import StandingReport

        _status, body = self._send("POST", "/v1/standings/query", json={"subject": ref, "kind": kind, "at": at,
                                                                       "known_at": known_at})
        return _build(StandingReport, body)

    def explain(self, ref: str, *, kind: str = "person", at=None, **_ignored):
        from ..results import Explanation

        _status, body = self._send("POST", "/v1/explanations/query", json={"subject": ref, "kind": kind, "at": at})
        return _build(Explanation, body)

    def rate(self, rater: str, ratee: str, stars: int, *, interaction: str | None = None, category: str | None = None,
             review: str | None = None, at=None, rater_kind: str = "person", ratee_kind: str = "person"):
        _status, body = self._send("POST", "/v1/ratings", json={
            "subject": ratee, "kind": ratee_kind, "stars": stars, "interaction": interaction, "category": category,
            "review": review, "rater": rater, "rater_kind": rater_kind, "at": at})
        return _build(RatingWritten, body)


def _build(cls, data: dict):
    """A result dataclass from its JSON (the server's `to_dict()`)."""
    from pydantic import TypeAdapter

    return TypeAdapter(cls).validate_python(data)
