"""What each party may do: the registry as a service between many parties.

One method per operation of the HTTP API, each taking the authenticated `Principal`. Every
rule about who may see or do what lives here, not in a front door:

    provider   submits events of the types its grants match, as itself (the `provider` of
               each event is its name); reads the results of its own submissions; nothing
               about subjects
    service    asks decisions for the services its grants match; sees allowed, effect,
               measures and reasons (never the score or tier), and only its own decisions
    subject    bound to one pseudonym: its own standing, explanation, decisions, reviews and
               who read its record; rates others as itself
    reviewer   reads what a dispute or human review needs: standings, explanations,
               decisions and their replays
    auditor    verify, proofs, the audit log, aggregates; standings by reference or pseudonym
    admin      principals and policy activation

Each read of a subject's data and each decision goes into the audit log with the principal,
its role and its purpose. Asking about someone else's record is refused without saying
whether that record exists, and a decision id another service made is "not found".

A write takes `in_commit` (decisions: `answers`): what that writes (an idempotency key's
stored response) commits in the write's own transaction (registry/idempotency.py).
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from ..errors import Forbidden, InvalidInput, NotFound
from ..instants import format_instant, now_us
from ..intake.readers import InputError
from ..policy.compiled import Policy
from ..results import (Activation, AppliedMeasure, AuditLog, ConsistencyProof, Explanation, InclusionProof,
                       IngestResult, PolicyRef, RatingWritten, Reason, Replay, Result, Reviews, StandingReport,
                       TreeHead, VerifyReport)
from ..scoring.explain import policy_ref
from ..store import Tx
from ..store.principals import SubmissionRow, SubmissionsTable
from .caller import Caller
from .decisions import CheckRequest, check_service_name
from .idempotency import Completion
from .principals import Principal, PrincipalCreated, require_role

if TYPE_CHECKING:
    from . import Registry

PSEUDONYM = re.compile(r"^[1-9][0-9]{0,5}:[0-9a-f]{32}$")
READERS = ("auditor", "reviewer")  # may read any subject's record (audited)


# -- results the service adds ------------------------------------------------------------------


@dataclass(slots=True)
class Submission(IngestResult):
    """An ingest result over HTTP: the same fields as `ingest --json`, and the submission's id."""

    submission: str = ""
    submitted_at: str = ""


@dataclass(slots=True, frozen=True)
class SubmissionList(Result):
    submissions: list[Submission]


@dataclass(slots=True, frozen=True)
class ServiceDecision(Result):
    """A decision as a service gets it: what the subject would be told, not their standing."""

    decision_id: str
    allowed: bool
    effect: str
    service: str
    at: str
    measures: list[AppliedMeasure]
    reasons: list[Reason]
    policy: PolicyRef
    ledger_size: int
    service_known: bool


@dataclass(slots=True, frozen=True)
class LoggedDecision(Result):
    """A decision as the decision log keeps it."""

    _omit_if_none: ClassVar[tuple[str, ...]] = ("subject",)

    decision_id: str
    service: str
    at: str
    allowed: bool
    effect: str
    measures: list[str]
    policy_digest: str
    ledger_size: int
    recorded_at: str
    principal: str
    role: str | None
    purpose: str | None
    subject: str | None = None  # the pseudonym (for auditors and reviewers)


@dataclass(slots=True, frozen=True)
class Me(Result):
    name: str
    role: str
    subject: str | None
    grants: list[str]


@dataclass(slots=True, frozen=True)
class PolicyInForce(Result):
    entry: int
    policy: PolicyRef
    title: str
    activated_at: str
    current: bool
    forced: str | None = None


@dataclass(slots=True, frozen=True)
class PolicyList(Result):
    policies: list[PolicyInForce]


@dataclass(slots=True, frozen=True)
class LintFinding(Result):
    code: str
    severity: str
    subject: str
    message: str
    reference: str


@dataclass(slots=True, frozen=True)
class LintReport(Result):
    policy: PolicyRef
    summary: dict[str, int]
    findings: list[LintFinding]


@dataclass(slots=True, frozen=True)
class PolicyDetail(Result):
    policy: PolicyRef
    title: str
    activations: list[int]
    text: str
    lint: LintReport


@dataclass(slots=True, frozen=True)
class PublicListing(Result):
    subject: str  # the pseudonym
    case: str | None
    entry: int
    since: str
    until: str | None


@dataclass(slots=True, frozen=True)
class PublicList(Result):
    """A list the policy in force publishes, and who is on it now."""

    id: str
    label: str
    description: str
    policy: PolicyRef
    listings: list[PublicListing] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class PublicLists(Result):
    lists: list[PublicList]


@dataclass(slots=True, frozen=True)
class Aggregates(Result):
    ledger_size: int
    subjects: int
    tiers: dict[str, int] = field(default_factory=dict)


# -- the gateway -------------------------------------------------------------------------------


class Gateway:
    def __init__(self, registry: "Registry"):
        self.registry = registry
        self.submissions = SubmissionsTable(registry.store.db)

    # -- providers -----------------------------------------------------------------------------

    def submit_events(self, principal: Principal, events: Iterable[tuple[int | None, Any]], *,
                      skip_invalid: bool = False, max_events: int | None = None,
                      in_commit: Callable[[Tx, tuple[Submission, int]], None] | None = None
                      ) -> tuple[Submission, int]:
        """Ingest a provider's batch as `ingest` does; returns the result and how many events the
        provider was not allowed to send (outside its grants, or naming another provider).

        The submission's record is written in the batch's transaction, and so is what
        `in_commit` writes, given what this returns; a batch that writes no event has its
        submission recorded on its own (and `in_commit` is not called)."""
        require_role(principal, "provider", doing="submitting events")
        checked: list[tuple[int | None, Any]] = []
        refused = 0
        for line, raw in events:
            if isinstance(raw, dict):
                problem = self._provider_problem(principal, raw)
                if problem is not None:
                    refused += 1
                    raw = InputError(line, problem)
            checked.append((line, raw))
            if max_events is not None and len(checked) > max_events:
                raise InvalidInput(f"a batch holds at most {max_events} events (SOCIALCREDIT_API_MAX_BATCH); "
                                   "send the rest in another batch")
        recorded: list[Submission] = []

        def record(tx: Tx, result: IngestResult) -> None:
            submission = self._record_submission(tx, principal, result)
            if in_commit is not None:
                in_commit(tx, (submission, refused))
            recorded.append(submission)

        result = self.registry.ingest(checked, provider=principal.name, skip_invalid=skip_invalid, in_commit=record)
        if recorded:
            return recorded[0], refused
        with self.registry.store.db.write() as tx:
            return self._record_submission(tx, principal, result), refused

    def _record_submission(self, tx: Tx, principal: Principal, result: IngestResult) -> Submission:
        submission_id = f"s-{secrets.token_hex(8)}"
        recorded = now_us()
        submission = Submission(result.accepted, result.duplicates, result.rejected, result.errors,
                                result.ledger_size, result.root, result.written,
                                folded_incrementally=result.folded_incrementally, folded_whole=result.folded_whole,
                                submission=submission_id, submitted_at=format_instant(recorded))
        self.submissions.insert(tx, SubmissionRow(submission_id, principal.name, recorded,
                                                  json.dumps(submission.to_dict())))
        return submission

    @staticmethod
    def _provider_problem(principal: Principal, raw: dict) -> str | None:
        named = raw.get("provider")
        if named not in (None, "", principal.name):
            return (f"provider {str(named)[:40]!r} is not the caller: a provider's events are its own "
                    f"({principal.name}); leave provider out")
        event_type = raw.get("type")
        if isinstance(event_type, str) and event_type and not principal.granted(event_type):
            return (f"event type {event_type[:120]!r} is outside this provider's grants "
                    f"({', '.join(principal.grants)})")
        return None

    def submission(self, principal: Principal, submission_id: str) -> Submission:
        require_role(principal, "provider", doing="reading a submission")
        row = self.submissions.get(submission_id)
        if row is None or row.principal != principal.name:
            raise NotFound(f"no submission {submission_id!r} of {principal.name}")
        return _submission(row)

    def my_submissions(self, principal: Principal, limit: int = 100) -> SubmissionList:
        require_role(principal, "provider", doing="reading submissions")
        return SubmissionList([_submission(row) for row in self.submissions.of(principal.name, _limit(limit))])

    # -- services ------------------------------------------------------------------------------

    def decide(self, principal: Principal, ref: str, service: str, *, kind: str = "person", at=None,
               purpose: str | None = None) -> ServiceDecision:
        request = self.decision_request(principal, ref, service, kind=kind, at=at)
        return self.decide_requests(principal.caller(purpose), [request])[0]

    def decision_request(self, principal: Principal, ref: str, service: str, *, kind: str = "person",
                         at=None) -> CheckRequest:
        """What a service may ask, checked: its role, its grants, the service's name, the subject."""
        from . import instant

        require_role(principal, "service", doing="asking for a decision")
        if not principal.granted(service):
            raise Forbidden(f"service {service[:120]!r} is outside this key's grants ({', '.join(principal.grants)})")
        check_service_name(service)
        return CheckRequest(self.registry.pseudonym(ref, kind), service, instant(at))

    def decide_requests(self, caller: Caller, requests: list[CheckRequest],
                        answers: Sequence[Callable[[ServiceDecision], Completion] | None] | None = None
                        ) -> list[ServiceDecision]:
        """Decide checked requests of one caller: logged (one commit for all) before they return.

        `answers[i]`, if given, makes request i's idempotency completion from its decision: it is
        committed with the decision."""
        made = None if answers is None else [None if answer is None else _as_service_decision(answer)
                                             for answer in answers]
        return [_service_decision(d) for d in self.registry.check_subjects(requests, caller=caller, answers=made)]

    def _decision_row(self, principal: Principal, decision_id: str):
        require_role(principal, "service", *READERS, doing="reading a decision")
        row = self.registry.store.decisions.get(decision_id) if isinstance(decision_id, str) else None
        if row is None or (principal.role == "service" and row.principal != principal.name):
            raise NotFound(f"no decision {decision_id!r}" + (" made by this service" if principal.role == "service"
                                                                else ""))
        return row

    def decision(self, principal: Principal, decision_id: str, purpose: str | None = None) -> LoggedDecision:
        row = self._decision_row(principal, decision_id)
        self.registry.audit_trail.record(principal.caller(purpose), "decision.read", row.subject,
                                         {"decision_id": decision_id})
        return LoggedDecision(row.id, row.service, format_instant(row.at_us), row.allowed, row.effect,
                              [m for m in row.measures.split(",") if m], row.policy_digest, row.ledger_size,
                              format_instant(row.recorded_us), row.principal, row.role, row.purpose,
                              None if principal.role == "service" else row.subject)

    def replay(self, principal: Principal, decision_id: str, purpose: str | None = None) -> Replay:
        self._decision_row(principal, decision_id)
        return self.registry.replay(decision_id, caller=principal.caller(purpose))

    # -- reading a subject's record ------------------------------------------------------------

    def _may_read(self, principal: Principal, subject: str, doing: str) -> None:
        if principal.role in READERS:
            return
        if principal.role == "subject":
            if principal.subject == subject:
                return
            raise Forbidden(f"{doing}: a subject key reads only its own record")
        raise Forbidden(f"{doing} is for an auditor or reviewer key (or the subject's own); this key "
                        f"({principal.name}) is a {principal.role}'s")

    def standing(self, principal: Principal, ref: str, *, kind: str = "person", at=None, known_at: int | None = None,
                 purpose: str | None = None) -> StandingReport:
        subject = self.registry.pseudonym(ref, kind)
        self._may_read(principal, subject, "reading a standing")
        return self.registry.standing_of(subject, at=at, known_at=known_at, caller=principal.caller(purpose))

    def standing_of(self, principal: Principal, subject: str, *, at=None, known_at: int | None = None,
                    purpose: str | None = None) -> StandingReport:
        subject = check_pseudonym(subject)
        self._may_read(principal, subject, "reading a standing")
        return self.registry.standing_of(subject, at=at, known_at=known_at, caller=principal.caller(purpose))

    def explanation(self, principal: Principal, ref: str, *, kind: str = "person", at=None,
                    purpose: str | None = None) -> Explanation:
        subject = self.registry.pseudonym(ref, kind)
        self._may_read(principal, subject, "reading an explanation")
        return self._explain(principal, subject, at, purpose)

    def explanation_of(self, principal: Principal, subject: str, *, at=None, purpose: str | None = None) -> Explanation:
        subject = check_pseudonym(subject)
        self._may_read(principal, subject, "reading an explanation")
        return self._explain(principal, subject, at, purpose)

    def _explain(self, principal: Principal, subject: str, at, purpose: str | None) -> Explanation:
        from . import instant

        return self.registry.standings.explanation(subject, instant(at), principal.caller(purpose))

    # -- a subject's own -----------------------------------------------------------------------

    def me(self, principal: Principal) -> Me:
        return Me(principal.name, principal.role, principal.subject, list(principal.grants))

    def _own(self, principal: Principal, doing: str) -> str:
        require_role(principal, "subject", doing=doing)
        return principal.subject

    def my_standing(self, principal: Principal, at=None, known_at: int | None = None,
                    purpose: str | None = None) -> StandingReport:
        subject = self._own(principal, "reading one's own standing")
        return self.registry.standing_of(subject, at=at, known_at=known_at, caller=principal.caller(purpose))

    def my_explanation(self, principal: Principal, at=None, purpose: str | None = None) -> Explanation:
        return self._explain(principal, self._own(principal, "reading one's own explanation"), at, purpose)

    def my_reviews(self, principal: Principal, at=None, purpose: str | None = None) -> Reviews:
        from . import instant

        subject = self._own(principal, "reading one's own reviews")
        return self.registry.ratings.reviews(subject, instant(at), principal.caller(purpose))

    def my_decisions(self, principal: Principal, limit: int = 100, purpose: str | None = None) -> AuditLog:
        subject = self._own(principal, "reading the decisions about oneself")
        return self.registry.audit_trail.query(principal.caller(purpose), subject=subject, action="decision",
                                               limit=_limit(limit))

    def my_reads(self, principal: Principal, limit: int = 100, purpose: str | None = None) -> AuditLog:
        subject = self._own(principal, "reading who read one's record")
        return self.registry.audit_trail.query(principal.caller(purpose), subject=subject, limit=_limit(limit))

    def rate(self, principal: Principal, ratee: str, stars: int, *, kind: str = "person",
             interaction: str | None = None, category: str | None = None, review: str | None = None,
             rater: str | None = None, rater_kind: str = "person", at=None,
             in_commit: Callable[[Tx, RatingWritten], None] | None = None) -> RatingWritten:
        """A rating by the key's subject; a `rater` named in the request must be that subject."""
        from . import instant

        rater_subject = self._own(principal, "rating")
        if rater is not None and self.registry.pseudonym(rater, rater_kind) != rater_subject:
            raise Forbidden("a subject key rates only as its own subject: the rater named is someone else")
        if self.registry.pseudonym(ratee, kind) == rater_subject:
            raise InvalidInput("a subject cannot rate itself")
        return self.registry.ratings.rate_as(rater_subject, ratee, stars, instant(at), interaction=interaction,
                                             category=category, review=review, ratee_kind=kind, in_commit=in_commit)

    # -- auditors ------------------------------------------------------------------------------

    def audit(self, principal: Principal, *, subject: str | None = None, of_principal: str | None = None,
              action: str | None = None, since=None, until=None, limit: int = 100,
              purpose: str | None = None) -> AuditLog:
        from . import instant

        require_role(principal, "auditor", doing="reading the audit log")
        if subject is not None:
            check_pseudonym(subject)
        return self.registry.audit_trail.query(
            principal.caller(purpose), subject=subject, principal=of_principal, action=action,
            since_us=None if since is None else instant(since), until_us=None if until is None else instant(until),
            limit=_limit(limit, 1000))

    def verify(self, principal: Principal) -> VerifyReport:
        require_role(principal, "auditor", doing="verifying the ledger")
        report = self.registry.verify()
        self.registry.audit_trail.record(principal.caller(), "verify", None, {"ok": report.ok, "size": report.size})
        return report

    def aggregates(self, principal: Principal) -> Aggregates:
        require_role(principal, "auditor", doing="reading aggregates")
        counts = self.registry.store.standings.tier_counts()
        return Aggregates(self.registry.size(), sum(counts.values()),
                          {("none" if tier is None else tier): n for tier, n in sorted(counts.items(), key=str)})

    # -- anyone --------------------------------------------------------------------------------

    def checkpoint(self) -> TreeHead:
        return self.registry.root()

    def inclusion(self, seq: int, size: int | None = None) -> InclusionProof:
        return self.registry.inclusion_proof(seq, size)

    def consistency(self, first: int, second: int | None = None) -> ConsistencyProof:
        return self.registry.consistency_proof(first, second)

    def public_lists(self) -> PublicLists:
        """The lists the policy in force marks public (`public = true`), without their members."""
        policy = self.registry.policy
        return PublicLists([PublicList(spec.id, spec.label, spec.description, policy_ref(policy))
                            for spec in policy.document.lists if spec.public])

    def public_list(self, list_id: str) -> PublicList:
        """Who is on a public list now, by pseudonym, with case and dates (from the materialized standings)."""
        from ..scoring.compact import CompactStanding

        policy = self.registry.policy
        spec = next((s for s in policy.document.lists if s.id == list_id), None)
        if spec is None or not spec.public:
            raise NotFound(f"the {policy.id} policy publishes no list {list_id[:60]!r} (see GET /v1/lists)")
        now = now_us()
        listings = []
        for row in self.registry.store.standings.rows():
            if row.policy_digest != policy.digest or list_id not in row.body:
                continue
            for spell in CompactStanding.from_json(row.body, row.cacheable).lists:
                if spell.list_id == list_id and spell.since_us <= now and (spell.until_us is None
                                                                           or now < spell.until_us):
                    listings.append(PublicListing(row.subject, spell.case or None, spell.seq,
                                                  format_instant(spell.since_us),
                                                  None if spell.until_us is None else format_instant(spell.until_us)))
        listings.sort(key=lambda item: (item.since, item.entry))
        return PublicList(spec.id, spec.label, spec.description, policy_ref(policy), listings)

    def policies(self) -> PolicyList:
        book = self.registry.policies
        book.refresh()
        activations = book._activations
        current = activations[-1].seq if activations else None
        listed = []
        for activation in activations:
            body = activation.body
            policy = book.by_digest(activation.digest)
            forced = body.get("forced")
            listed.append(PolicyInForce(activation.seq, PolicyRef(body["id"], body["version"], body["digest"]),
                                        policy.document.policy.title, format_instant(activation.recorded_us),
                                        activation.seq == current, forced["reason"] if forced else None))
        return PolicyList(listed)

    def policy(self, ref: str) -> PolicyDetail:
        """A policy put in force in this ledger, by digest or id (the newest of that id)."""
        book = self.registry.policies
        book.refresh()
        found = [a for a in book._activations if ref in (a.digest, a.body["id"])]
        if not found:
            raise NotFound(f"no policy {ref[:80]!r} has been in force in this registry (see GET /v1/policies)")
        policy = book.by_digest(found[-1].digest)
        return PolicyDetail(policy_ref(policy), policy.document.policy.title,
                            [a.seq for a in found if a.digest == policy.digest], policy.text, lint_report(policy))

    # -- admins --------------------------------------------------------------------------------

    def lint(self, principal: Principal, policy: Policy) -> LintReport:
        require_role(principal, "admin", doing="linting a policy")
        return lint_report(policy() if callable(policy) else policy)

    def activate(self, principal: Principal, policy: Policy, *, force: bool = False, reason: str | None = None,
                 in_commit: Callable[[Tx, Activation], None] | None = None) -> Activation:
        require_role(principal, "admin", doing="putting a policy in force")
        policy = policy() if callable(policy) else policy  # read only once the caller may
        return self.registry.activate(policy, caller=principal.caller(), force=force, reason=reason,
                                      in_commit=in_commit)

    def add_principal(self, principal: Principal, name: str, role: str, *, grants=(), subject: str | None = None,
                      kind: str = "person",
                      in_commit: Callable[[Tx, PrincipalCreated], None] | None = None) -> PrincipalCreated:
        require_role(principal, "admin", doing="adding a principal")
        return self.registry.principals.add(name, role, grants=grants, subject=subject, kind=kind,
                                            caller=principal.caller(), in_commit=in_commit)

    def principals(self, principal: Principal):
        require_role(principal, "admin", doing="listing principals")
        return self.registry.principals.list()

    def principal(self, principal: Principal, name: str):
        require_role(principal, "admin", doing="reading a principal")
        return self.registry.principals.get(name)

    def revoke_principal(self, principal: Principal, name: str):
        require_role(principal, "admin", doing="revoking a principal")
        return self.registry.principals.revoke(name, caller=principal.caller())


def _service_decision(d) -> ServiceDecision:
    """What a service is told of a decision (registry/decisions.py's `Decision`)."""
    return ServiceDecision(d.decision_id, d.allowed, d.effect, d.service, d.at, d.measures, d.reasons, d.policy,
                           d.ledger_size, d.service_known)


def _as_service_decision(answer: Callable[[ServiceDecision], Completion]):
    return lambda decision: answer(_service_decision(decision))


def lint_report(policy: Policy) -> LintReport:
    from ..policy.lint import lint, summarize

    findings = lint(policy)
    return LintReport(policy_ref(policy), summarize(findings),
                      [LintFinding(f.code, f.severity, f.subject, f.message, f.reference) for f in findings])


def check_pseudonym(subject: str) -> str:
    if not isinstance(subject, str) or not PSEUDONYM.match(subject):
        raise InvalidInput("a subject in a path is its pseudonym (VERSION:32 hex digits, as standings and the audit "
                           "log show it), never a national ID or username: send those in a request body")
    return subject


def _limit(limit: int, most: int = 1000) -> int:
    if not 1 <= limit <= most:
        raise InvalidInput(f"limit must be between 1 and {most}, got {limit}")
    return limit


def _submission(row: SubmissionRow) -> Submission:
    data = json.loads(row.result)
    from ..results import IngestProblem

    data["errors"] = [IngestProblem(**e) for e in data["errors"]]
    return Submission(**data)
