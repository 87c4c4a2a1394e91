"""The endpoints: each parses, calls the gateway, and answers with the result's `to_dict()`.

No rule lives here: who may do what is the gateway's (registry/gateway.py).
"""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import Response

from ..errors import InvalidInput
from ..intake.readers import InputError, read_jsonl
from ..policy.load import load_policy, pack_names, parse_policy
from ..registry.gateway import (Aggregates, LintReport, LoggedDecision, Me, PolicyDetail, PolicyList, PublicList,
                                PublicLists, ServiceDecision, Submission, SubmissionList)
from ..registry.principals import Principal, PrincipalCreated, PrincipalList, PrincipalView
from ..results import (Activation, AuditLog, ConsistencyProof, Explanation, InclusionProof, RatingWritten, Replay,
                       Reviews, StandingReport, TreeHead, VerifyReport)
from .context import (Answer, Malformed, UnsupportedMedia, anonymous, authenticated, call, context, idempotent,
                      instance, ok, purpose_header)
from .models import (EVENT_SCHEMA, DecisionRequest, PolicyRequest, PolicySource, PrincipalRequest, RatingRequest,
                     StandingQuery, SubjectQuery)
from .problems import ERROR_RESPONSES, problem

Caller = Annotated[Principal, Depends(authenticated)]
Purpose = Annotated[str | None, Depends(purpose_header)]
AtQuery = Annotated[str | None, Query(max_length=40, description="RFC 3339 time or a date; default now.")]
KnownAt = Annotated[int | None, Query(ge=1, description="As known at this ledger size.")]
Limit = Annotated[int, Query(ge=1, le=1000, description="How many of the newest records.")]
Pseudonym = Annotated[str, Path(max_length=64, pattern=r"^[1-9][0-9]{0,5}:[0-9a-f]{32}$",
                                description="A subject's pseudonym (VERSION:32 hex digits), never a reference.")]
JSON_LINES = ("application/x-ndjson", "application/jsonl", "application/json-lines", "application/jsonlines")

v1 = APIRouter(prefix="/v1", responses=ERROR_RESPONSES)
health = APIRouter()
public = [Depends(anonymous)]


# -- health ------------------------------------------------------------------------------------


@health.get("/healthz", tags=["health"], summary="The process is up (no key)")
async def healthz() -> dict:
    return {"status": "ok"}


@health.get("/readyz", tags=["health"], summary="The database answers and a policy is in force (no key)",
            responses={503: ERROR_RESPONSES[503]})
async def readyz(request: Request):
    ctx = context(request)

    def look():
        ctx.registry.view.sync()
        return {"status": "ready", "ledger_size": ctx.registry.size(), "policy": ctx.registry.policy.ref()}

    try:
        return ok(await call(look))
    except Exception as exc:  # any reason the registry cannot answer is "not ready"
        return problem(503, "unavailable", f"not ready: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}",
                       instance="/readyz", headers={"Retry-After": "1"})


# -- providers ---------------------------------------------------------------------------------


@v1.post("/events", tags=["providers"], response_model=Submission, summary="Submit a batch of events",
         openapi_extra={"requestBody": {"required": True, "content": {
             "application/json": {"schema": {"type": "array", "items": EVENT_SCHEMA}},
             "application/x-ndjson": {"schema": {"type": "string", "description": "One event per line."}}}}})
async def submit_events(request: Request, principal: Caller,
                        skip_invalid: Annotated[bool, Query(description="Ingest the valid events and list the rest "
                                                                        "(default: one bad event refuses the batch).")]
                        = False):
    """A provider's events, all of them or (on any error, unless `skip_invalid`) none: the same
    validation, deduplication and result as `socialcredit ingest --json`. Each event's provider is
    the caller; an event of a type outside the key's grants, or naming another provider, is refused
    (403 when it refuses the batch). A JSON array, or JSON lines (`application/x-ndjson`)."""
    ctx = context(request)

    def render(submitted: tuple[Submission, int]) -> Response:
        submission, refused = submitted
        if submission.errors and not skip_invalid:
            first = submission.errors[0]
            status = 403 if refused else 422
            where = f"line {first.line}" if first.line is not None else "an event"
            return problem(status, "forbidden" if refused else "invalid_input",
                           f"{submission.rejected} event(s) refused, nothing written; {where}: {first.error}",
                           instance=instance(request), extra=submission.to_dict())
        return ok(submission)

    async def produce(claim) -> Response:
        body = await request.body()
        media = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
        answer = Answer(claim, render)

        def submit():
            events = _events(body, media)
            return ctx.gateway.submit_events(principal, events, skip_invalid=skip_invalid,
                                             max_events=ctx.settings.api_max_batch, in_commit=answer.in_commit)

        return answer.response(await call(submit))

    return await idempotent(request, principal, produce)


def _events(body: bytes, media: str) -> list:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Malformed(f"the body is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    if media in JSON_LINES:
        return list(read_jsonl(text.split("\n")))
    if media != "application/json":
        raise UnsupportedMedia(f"a batch of events is application/json (an array) or application/x-ndjson (JSON "
                               f"lines), not {media[:60]}")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Malformed(f"the body is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if not isinstance(value, list):
        raise InvalidInput("a batch of events is a JSON array of event objects (or JSON lines)")
    return [(number, item if isinstance(item, dict) else InputError(number, "expected a JSON object with subject, "
                                                                            "type, occurred_at, key"))
            for number, item in enumerate(value, start=1)]


@v1.get("/events/submissions", tags=["providers"], response_model=SubmissionList,
        summary="The caller's own submissions, newest first")
async def my_submissions(request: Request, principal: Caller, limit: Limit = 100):
    return ok(await call(context(request).gateway.my_submissions, principal, limit))


@v1.get("/events/submissions/{submission_id}", tags=["providers"], response_model=Submission,
        summary="One of the caller's submissions")
async def submission(request: Request, principal: Caller,
                     submission_id: Annotated[str, Path(max_length=40)]):
    return ok(await call(context(request).gateway.submission, principal, submission_id))


# -- services ----------------------------------------------------------------------------------


@v1.post("/decisions", tags=["services"], status_code=201, response_model=ServiceDecision,
         summary="May this subject use this service? (logged)")
async def decide(request: Request, principal: Caller, body: DecisionRequest, purpose: Purpose = None):
    """The decision is committed to the decision log (with its audit record) before it is answered.
    The service gets what the subject would be told: allowed, effect, measures, reasons."""
    ctx = context(request)

    def render(decision: ServiceDecision) -> Response:
        return ok(decision, 201, {"Location": f"/v1/decisions/{decision.decision_id}"})

    async def produce(claim) -> Response:
        answer = Answer(claim, render)
        return answer.response(await ctx.decisions.decide(principal, body.subject, body.service, body.kind, body.at,
                                                          purpose, answer.completion))

    return await idempotent(request, principal, produce)


@v1.get("/decisions/{decision_id}", tags=["services"], response_model=LoggedDecision, summary="A logged decision")
async def decision(request: Request, principal: Caller, decision_id: Annotated[str, Path(max_length=40)],
                   purpose: Purpose = None):
    return ok(await call(context(request).gateway.decision, principal, decision_id, purpose))


@v1.get("/decisions/{decision_id}/replay", tags=["services"], response_model=Replay,
        summary="Recompute a logged decision from the ledger as it was")
async def replay(request: Request, principal: Caller, decision_id: Annotated[str, Path(max_length=40)],
                 purpose: Purpose = None):
    return ok(await call(context(request).gateway.replay, principal, decision_id, purpose))


# -- reading a subject's record ----------------------------------------------------------------


@v1.post("/standings/query", tags=["subjects"], response_model=StandingReport,
         summary="A standing, by reference (auditor, reviewer, or the subject's own key)")
async def standing_query(request: Request, principal: Caller, body: StandingQuery, purpose: Purpose = None):
    ctx = context(request)

    async def produce(_claim):
        return ok(await call(ctx.gateway.standing, principal, body.subject, kind=body.kind, at=body.at,
                             known_at=body.known_at, purpose=purpose))

    return await idempotent(request, principal, produce)


@v1.post("/explanations/query", tags=["subjects"], response_model=Explanation,
         summary="An explanation, by reference (auditor, reviewer, or the subject's own key)")
async def explanation_query(request: Request, principal: Caller, body: SubjectQuery, purpose: Purpose = None):
    ctx = context(request)

    async def produce(_claim):
        return ok(await call(ctx.gateway.explanation, principal, body.subject, kind=body.kind, at=body.at,
                             purpose=purpose))

    return await idempotent(request, principal, produce)


@v1.get("/subjects/{pseudonym}/standing", tags=["subjects"], response_model=StandingReport,
        summary="A standing, by pseudonym")
async def standing_of(request: Request, principal: Caller, pseudonym: Pseudonym, at: AtQuery = None,
                      known_at: KnownAt = None, purpose: Purpose = None):
    return ok(await call(context(request).gateway.standing_of, principal, pseudonym, at=at, known_at=known_at,
                         purpose=purpose))


@v1.get("/subjects/{pseudonym}/explanation", tags=["subjects"], response_model=Explanation,
        summary="An explanation, by pseudonym")
async def explanation_of(request: Request, principal: Caller, pseudonym: Pseudonym, at: AtQuery = None,
                         purpose: Purpose = None):
    return ok(await call(context(request).gateway.explanation_of, principal, pseudonym, at=at, purpose=purpose))


# -- a subject's own ---------------------------------------------------------------------------


@v1.get("/me", tags=["me"], response_model=Me, summary="Who this key is")
async def me(request: Request, principal: Caller):
    return ok(context(request).gateway.me(principal))


@v1.get("/me/standing", tags=["me"], response_model=StandingReport, summary="The subject's own standing")
async def my_standing(request: Request, principal: Caller, at: AtQuery = None, known_at: KnownAt = None,
                      purpose: Purpose = None):
    return ok(await call(context(request).gateway.my_standing, principal, at, known_at, purpose))


@v1.get("/me/explanation", tags=["me"], response_model=Explanation, summary="The subject's own explanation")
async def my_explanation(request: Request, principal: Caller, at: AtQuery = None, purpose: Purpose = None):
    return ok(await call(context(request).gateway.my_explanation, principal, at, purpose))


@v1.get("/me/decisions", tags=["me"], response_model=AuditLog, summary="Decisions made about the subject")
async def my_decisions(request: Request, principal: Caller, limit: Limit = 100, purpose: Purpose = None):
    return ok(await call(context(request).gateway.my_decisions, principal, limit, purpose))


@v1.get("/me/reads", tags=["me"], response_model=AuditLog, summary="Who read the subject's record, when and why")
async def my_reads(request: Request, principal: Caller, limit: Limit = 100, purpose: Purpose = None):
    return ok(await call(context(request).gateway.my_reads, principal, limit, purpose))


@v1.get("/me/reviews", tags=["me"], response_model=Reviews, summary="The ratings about the subject")
async def my_reviews(request: Request, principal: Caller, at: AtQuery = None, purpose: Purpose = None):
    return ok(await call(context(request).gateway.my_reviews, principal, at, purpose))


@v1.post("/ratings", tags=["me"], status_code=201, response_model=RatingWritten,
         summary="Rate a subject, as the key's subject")
async def rate(request: Request, principal: Caller, body: RatingRequest):
    ctx = context(request)

    def render(rating: RatingWritten) -> Response:
        return ok(rating, 201 if not rating.duplicate else 200)

    async def produce(claim):
        answer = Answer(claim, render)
        return answer.response(await call(ctx.gateway.rate, principal, body.subject, body.stars, kind=body.kind,
                                          interaction=body.interaction, category=body.category, review=body.review,
                                          rater=body.rater, rater_kind=body.rater_kind, at=body.at,
                                          in_commit=answer.in_commit))

    return await idempotent(request, principal, produce)


# -- the ledger --------------------------------------------------------------------------------


@v1.get("/ledger/checkpoint", tags=["ledger"], response_model=TreeHead, dependencies=public,
        summary="The current tree head: size and root (no key)")
async def checkpoint(request: Request):
    return ok(await call(context(request).gateway.checkpoint))


@v1.get("/ledger/inclusion/{seq}", tags=["ledger"], response_model=InclusionProof, dependencies=public,
        summary="An RFC 9162 inclusion proof (no key)")
async def inclusion(request: Request, seq: Annotated[int, Path(ge=0)],
                    size: Annotated[int | None, Query(ge=1)] = None):
    return ok(await call(context(request).gateway.inclusion, seq, size))


@v1.get("/ledger/consistency", tags=["ledger"], response_model=ConsistencyProof, dependencies=public,
        summary="An RFC 9162 consistency proof between two sizes (no key)")
async def consistency(request: Request, first: Annotated[int, Query(ge=0)],
                      second: Annotated[int | None, Query(ge=1)] = None):
    return ok(await call(context(request).gateway.consistency, first, second))


@v1.post("/ledger/verify", tags=["auditors"], response_model=VerifyReport,
         summary="Recompute the Merkle tree from every stored entry")
async def verify(request: Request, principal: Caller):
    ctx = context(request)

    async def produce(_claim):
        return ok(await call(ctx.gateway.verify, principal))

    return await idempotent(request, principal, produce)


# -- auditors ----------------------------------------------------------------------------------


@v1.get("/audit", tags=["auditors"], response_model=AuditLog, summary="The audit log, newest first (logged too)")
async def audit(request: Request, principal: Caller,
                subject: Annotated[str | None, Query(max_length=64, pattern=r"^[1-9][0-9]{0,5}:[0-9a-f]{32}$",
                                                     description="A pseudonym.")] = None,
                of_principal: Annotated[str | None, Query(alias="principal", max_length=200)] = None,
                action: Annotated[str | None, Query(max_length=40)] = None,
                since: AtQuery = None, until: AtQuery = None, limit: Limit = 100, purpose: Purpose = None):
    return ok(await call(context(request).gateway.audit, principal, subject=subject, of_principal=of_principal,
                         action=action, since=since, until=until, limit=limit, purpose=purpose))


@v1.get("/aggregates", tags=["auditors"], response_model=Aggregates, summary="How many subjects in each tier")
async def aggregates(request: Request, principal: Caller):
    return ok(await call(context(request).gateway.aggregates, principal))


# -- principals --------------------------------------------------------------------------------


@v1.get("/principals", tags=["admins"], response_model=PrincipalList, summary="Every principal")
async def principals(request: Request, principal: Caller):
    return ok(await call(context(request).gateway.principals, principal))


@v1.post("/principals", tags=["admins"], status_code=201, response_model=PrincipalCreated,
         summary="Add a principal; its key is in the answer, once")
async def add_principal(request: Request, principal: Caller, body: PrincipalRequest):
    ctx = context(request)

    def render(created: PrincipalCreated) -> Response:
        return ok(created, 201, {"Location": f"/v1/principals/{created.principal.name}"})

    def keep(created: PrincipalCreated) -> Response:
        # A key is kept only as its Argon2id hash, so a retry under the Idempotency-Key is told
        # the principal is there, not given the key again.
        return problem(409, "conflict", f"the principal {created.principal.name} was added by the first request "
                                        "under this Idempotency-Key; its key was shown to that request only and "
                                        "is not kept: revoke the principal and add it again for a new key",
                       instance=f"/v1/principals/{created.principal.name}")

    async def produce(claim):
        answer = Answer(claim, render, keep)
        return answer.response(await call(ctx.gateway.add_principal, principal, body.name, body.role,
                                          grants=body.grants, subject=body.subject, kind=body.kind,
                                          in_commit=answer.in_commit))

    return await idempotent(request, principal, produce)


@v1.get("/principals/{name}", tags=["admins"], response_model=PrincipalView, summary="One principal")
async def get_principal(request: Request, principal: Caller, name: Annotated[str, Path(max_length=100)]):
    return ok(await call(context(request).gateway.principal, principal, name))


@v1.delete("/principals/{name}", tags=["admins"], response_model=PrincipalView,
           summary="Revoke a principal's key (it stops working within a second)")
async def revoke_principal(request: Request, principal: Caller, name: Annotated[str, Path(max_length=100)]):
    return ok(await call(context(request).gateway.revoke_principal, principal, name))


# -- policies ----------------------------------------------------------------------------------


@v1.get("/policies", tags=["policies"], response_model=PolicyList, dependencies=public,
        summary="The policies put in force in this registry (no key)")
async def policies(request: Request):
    return ok(await call(context(request).gateway.policies))


@v1.get("/policies/{ref}", tags=["policies"], response_model=PolicyDetail, dependencies=public,
        summary="A policy in force: its text and lint report (no key)")
async def policy(request: Request, ref: Annotated[str, Path(max_length=100, description="Its digest, or its id "
                                                                                        "(the newest).")]):
    return ok(await call(context(request).gateway.policy, ref))


@v1.get("/lists", tags=["policies"], response_model=PublicLists, dependencies=public,
        summary="The lists the policy in force publishes (no key)")
async def public_lists(request: Request):
    return ok(await call(context(request).gateway.public_lists))


@v1.get("/lists/{list_id}", tags=["policies"], response_model=PublicList, dependencies=public,
        summary="Who is on a published list now, by pseudonym (no key)")
async def public_list(request: Request, list_id: Annotated[str, Path(max_length=64)]):
    return ok(await call(context(request).gateway.public_list, list_id))


def _policy_from(body: PolicySource | PolicyRequest):
    if (body.text is None) == (body.pack is None):
        raise InvalidInput("give the policy as text (TOML) or as a pack's name, one of the two")
    if body.pack is not None:
        if body.pack not in pack_names():
            raise InvalidInput(f"no pack {body.pack[:60]!r} (packs: {', '.join(pack_names())})")
        return load_policy(body.pack)
    return parse_policy(body.text, source="POST /v1/policies")


@v1.post("/policies/lint", tags=["policies"], response_model=LintReport, summary="Lint a policy (nothing changes)")
async def lint_policy(request: Request, principal: Caller, body: PolicySource):
    ctx = context(request)

    async def produce(_claim):
        return ok(await call(lambda: ctx.gateway.lint(principal, lambda: _policy_from(body))))

    return await idempotent(request, principal, produce)


@v1.post("/policies", tags=["policies"], status_code=201, response_model=Activation,
         summary="Put a policy in force (refused with lint errors unless forced with a reason)")
async def activate_policy(request: Request, principal: Caller, body: PolicyRequest):
    ctx = context(request)

    def render(activation: Activation) -> Response:
        return ok(activation, 201)

    async def produce(claim):
        answer = Answer(claim, render)
        return answer.response(await call(lambda: ctx.gateway.activate(
            principal, lambda: _policy_from(body), force=body.force, reason=body.reason, in_commit=answer.in_commit)))

    return await idempotent(request, principal, produce)
