"""What the registry answers: typed results, one way to JSON, and their JSON Schema.

Every front door (the CLI's `--json`, the HTTP API) turns a result into JSON with
`result.to_dict()`, and `Type.json_schema()` describes it. Results are plain dataclasses
(cheap to make on the decision path); `to_dict` walks them, leaving out the fields a class
lists in `_omit_if_none` when they are None, and the fields it lists in `_internal`.

Times are RFC 3339 strings in UTC; dates in words are in the policy's time zone.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum
from functools import lru_cache
from typing import Any, ClassVar, Literal, Union


class Result:
    """Base of every result: `to_dict()` for JSON, `json_schema()` to describe it."""

    __slots__ = ()
    _omit_if_none: ClassVar[tuple[str, ...]] = ()
    _internal: ClassVar[tuple[str, ...]] = ()

    def to_dict(self) -> dict:
        return _plain(self)

    @classmethod
    def json_schema(cls) -> dict:
        return _adapter(cls).json_schema(mode="serialization")


def _plain(value: Any) -> Any:
    if isinstance(value, Result):
        out = {}
        for name, omit in _plan(type(value)):
            item = getattr(value, name)
            if item is None:
                if not omit:
                    out[name] = None
            elif type(item) in _SCALARS:
                out[name] = item
            else:
                out[name] = _plain(item)
        return out
    if isinstance(value, (list, tuple)):
        return [v if type(v) in _SCALARS else _plain(v) for v in value]
    if isinstance(value, dict):
        return {k: v if type(v) in _SCALARS else _plain(v) for k, v in value.items()}
    if isinstance(value, Enum):
        return value.value
    return value


_SCALARS = frozenset((str, int, bool, float))  # exactly these types (not an Enum that is also a str) stay as they are
_PLANS: dict[type, tuple[tuple[str, bool], ...]] = {}


def _plan(cls: type) -> tuple[tuple[str, bool], ...]:
    """A result class's fields in order, each with whether a None leaves it out (once per class)."""
    plan = _PLANS.get(cls)
    if plan is None:
        plan = _PLANS[cls] = tuple((f.name, f.name in cls._omit_if_none) for f in dataclasses.fields(cls)
                                   if f.name not in cls._internal)
    return plan


@lru_cache(maxsize=None)
def _adapter(cls):
    from pydantic import TypeAdapter

    return TypeAdapter(cls)


# -- the pieces of a standing ------------------------------------------------------------------


@dataclass(slots=True)
class PolicyRef(Result):
    id: str
    version: str
    digest: str
    timezone: str = "UTC"  # the policy's calendar: its dates in words are in this zone


@dataclass(slots=True)
class RuleReason(Result):
    """Points a record adds to (or takes from) the score or a dimension."""

    kind: Literal["rule"] = field(default="rule", init=False)
    rule: str
    entry: int
    occurred_at: str
    until: str | None
    text: str
    points: float
    effect: float | None = None  # on the score, bounds counted: a standing's effects add up to its change


@dataclass(slots=True)
class CapReason(Result):
    """A record that holds the score at or below a cap."""

    kind: Literal["cap"] = field(default="cap", init=False)
    rule: str
    entry: int
    occurred_at: str
    until: str | None
    text: str


@dataclass(slots=True)
class ListReason(Result):
    """A stay on a list."""

    kind: Literal["list"] = field(default="list", init=False)
    list: str
    entry: int
    occurred_at: str
    until: str | None
    text: str
    case: str | None


@dataclass(slots=True)
class RatingReason(Result):
    """A rating that pulls a rating dimension down or up."""

    kind: Literal["rating"] = field(default="rating", init=False)
    dimension: str
    entry: int
    stars: int
    weight: float
    occurred_at: str
    until: None = field(default=None, init=False)
    text: str = ""


Reason = Union[RuleReason, CapReason, ListReason, RatingReason]


@dataclass(slots=True)
class ListStay(Result):
    list: str
    case: str | None
    entry: int
    since: str
    until: str | None


@dataclass(slots=True)
class AppliedMeasure(Result):
    """A measure that governed a decision (its reasons are the decision's)."""

    id: str
    service: str
    effect: str
    until: str | None
    notice: str
    remedy: str
    legal_basis: str


@dataclass(slots=True)
class MeasureInForce(AppliedMeasure):
    """A measure that applies to the subject, with what it means and why it applies."""

    reasons: list[Reason]


@dataclass(slots=True)
class Reply(Result):
    entry: int
    text: str


@dataclass(slots=True)
class RatingView(Result):
    """One rating a subject received, as they see it."""

    entry: int
    rater: str
    stars: int
    category: str | None
    interaction: str
    review: str | None
    occurred_at: str
    occurred_on: str  # the date, on the policy's calendar
    weight: float
    why_this_weight: str
    status: str  # counts | held | disputed
    held: bool
    hold_until: str | None
    explanation: str
    replies: list[Reply]


# -- standings and explanations ----------------------------------------------------------------


@dataclass(slots=True)
class StandingParts(Result):
    """What a standing report and an explanation share."""

    score: float | None
    tier: str | None
    dimensions: dict[str, float]
    lists: list[ListStay]
    measures: list[MeasureInForce]
    reasons: list[Reason]
    policy: PolicyRef
    valid_from: str | None
    valid_until: str | None
    subject: str
    at: str
    known_at: int


@dataclass(slots=True)
class StandingReport(StandingParts):
    """A subject's standing: score, tier, dimensions, lists, measures and ranked reasons."""

    _omit_if_none: ClassVar[tuple[str, ...]] = ("ratings",)

    entries: int = 0  # how many live records about the subject
    ratings: list[RatingView] | None = None  # policies with ratings only


@dataclass(slots=True)
class Effect(Result):
    """What one record does to the standing, in words."""

    _omit_if_none: ClassVar[tuple[str, ...]] = ("rule", "points", "list", "stars", "weight")

    status: str
    text: str
    rule: str | None = None
    points: float | None = None
    list: str | None = None
    stars: int | None = None
    weight: float | None = None


@dataclass(slots=True)
class ExplainedEntry(Result):
    entry: int
    type: str
    occurred_at: str
    occurred_on: str  # the date, on the policy's calendar
    provider: str  # who reported it: a subject contesting a record needs to know
    what: str
    effects: list[Effect]


@dataclass(slots=True)
class Explanation(StandingParts):
    """Every record about a subject and what it does, with the standing it adds up to."""

    entries: list[ExplainedEntry] = field(default_factory=list)


@dataclass(slots=True)
class Reviews(Result):
    subject: str
    at: str
    score: float | None
    dimensions: dict[str, float]
    reviews: list[RatingView]


# -- decisions ---------------------------------------------------------------------------------


@dataclass(slots=True)
class Decision(Result):
    """May this subject use this service? Logged before it is returned, and replayable."""

    _internal: ClassVar[tuple[str, ...]] = ("subject",)

    decision_id: str
    allowed: bool
    effect: str
    service: str
    at: str
    measures: list[AppliedMeasure]
    reasons: list[Reason]
    policy: PolicyRef
    ledger_size: int
    score: float | None
    tier: str | None
    service_known: bool  # does any measure of the policy mention this service (or one above or below)?
    subject: str = ""  # the pseudonym; not part of the answer a service sees


@dataclass(slots=True)
class Verdict(Result):
    allowed: bool
    effect: str
    measures: list[str]


@dataclass(slots=True)
class Replay(Result):
    """A logged decision recomputed from the ledger as it was: `same` says whether it matches."""

    decision_id: str
    service: str
    at: str
    ledger_size: int
    policy: PolicyRef
    logged: Verdict
    replayed: Verdict
    reasons: list[Reason]
    same: bool


# -- writing -----------------------------------------------------------------------------------


@dataclass(slots=True)
class IngestProblem(Result):
    line: int | None
    error: str


@dataclass(slots=True)
class IngestResult(Result):
    """What an ingest did: all of the batch, or (on any error without skip_invalid) none of it."""

    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[IngestProblem] = field(default_factory=list)
    ledger_size: int = 0
    root: str | None = None
    written: bool = False
    folded_incrementally: int = 0  # subjects whose standing folded only the new events (their kept state)
    folded_whole: int = 0  # subjects whose whole history was read and folded (new, out of order, a void...)


@dataclass(slots=True)
class EntryWritten(Result):
    """One event the registry wrote for a command (enrol, respond)."""

    accepted: int
    duplicate: bool
    entry: int | None
    ledger_size: int
    root: str | None


@dataclass(slots=True)
class RatingWritten(Result):
    """A rating, with the weight fixed for it at ingest and why."""

    _omit_if_none: ClassVar[tuple[str, ...]] = ("weight", "why_this_weight")

    accepted: int
    duplicate: bool
    entry: int | None
    ledger_size: int
    root: str | None
    weight: float | None = None
    why_this_weight: str | None = None


@dataclass(slots=True)
class Voided(Result):
    void_entry: int
    cancels: int
    size: int
    root: str


@dataclass(slots=True)
class LintCounts(Result):
    error: int
    warning: int
    info: int


@dataclass(slots=True)
class Activation(Result):
    """A policy put in force: its ledger entry, the tree head after it, what lint said."""

    _omit_if_none: ClassVar[tuple[str, ...]] = ("forced",)

    entry: int
    policy: PolicyRef
    size: int
    root: str
    lint: LintCounts
    dropped_event_types: list[str]
    forced: str | None = None  # the reason given for activating despite lint errors


@dataclass(slots=True)
class InForce(Result):
    """How the policy now in force got there: its activation entry, and whether it was forced
    past lint errors (by whom, why). Kept visible wherever the policy is shown."""

    _omit_if_none: ClassVar[tuple[str, ...]] = ("forced_reason", "forced_by", "lint_errors")

    entry: int
    activated_at: str
    forced_reason: str | None = None
    forced_by: str | None = None
    lint_errors: int | None = None


@dataclass(slots=True)
class Created(Result):
    db: str
    policy: PolicyRef
    size: int
    root: str
    key_file: str | None = None  # where the pseudonym key was written (None: it came from SOCIALCREDIT_KEY)
    key_beside_database: bool = False  # whoever copies the folder can re-identify every subject


@dataclass(slots=True)
class Rebuilt(Result):
    subjects: int
    engine: str = "fold"
    # subjects a columnar engine left to the per-subject fold, and why (the fold's own: 0;
    # None on Spark, whose executors' counts are not gathered yet)
    folded_one_by_one: int | None = 0
    fallback_reasons: dict[str, int] = field(default_factory=dict)


# -- tamper evidence ---------------------------------------------------------------------------


@dataclass(slots=True)
class Exported(Result):
    """A Parquet export written (registry/export.py): where, the checkpoint it was taken at, what it holds."""

    _omit_if_none: ClassVar[tuple[str, ...]] = ("standings", "decisions")

    folder: str
    size: int  # the checkpoint's: entries 0..size-1 are exported
    root: str
    entries: dict[str, int]  # entries exported, by kind
    standings: int | None
    decisions: int | None
    files: int


@dataclass(slots=True)
class ExportProblem(Result):
    """One thing `verify --export` found wrong, and where: an entry, a file, the manifest.

    kind: modified | deleted | inserted | checkpoint | manifest.
    """

    kind: str
    entry: int | None  # the ledger entry concerned
    file: str | None  # the file concerned, relative to the export folder
    message: str


@dataclass(slots=True)
class ExportVerifyReport(Result):
    ok: bool
    folder: str
    size: int  # the manifest's checkpoint size
    root: str | None  # the manifest's root
    computed_root: str | None  # the root of the exported entries (None when some are missing)
    entries: int  # ledger rows read
    files: int  # ledger files read
    problems: list[ExportProblem]


@dataclass(slots=True)
class TreeHead(Result):
    size: int
    root: str


@dataclass(slots=True)
class InclusionProof(Result):
    seq: int
    size: int
    leaf_hash: str
    root: str
    proof: list[str]


@dataclass(slots=True)
class ConsistencyProof(Result):
    old_size: int
    new_size: int
    old_root: str
    new_root: str
    proof: list[str]


@dataclass(slots=True)
class VerifyProblem(Result):
    """One thing `verify` found wrong, and where: a ledger entry, a checkpoint, a row of a log, a standing.

    kind, for the ledger: modified | deleted | inserted | reordered | checkpoint | subtree |
    frontier | key; for the decision log: decision-modified | decision-deleted |
    decision-inserted | decision-reordered | decision-rewritten | decision-ledger-size |
    decision-policy; for the audit log the same with `audit-` (no size or policy); standing
    (`verify --deep`); published (`verify --against`).
    """

    _omit_if_none: ClassVar[tuple[str, ...]] = ("decision", "position", "subject", "checkpoint")

    kind: str
    entry: int | None  # the ledger entry concerned
    message: str
    decision: str | None = None  # the decision's id
    position: int | None = None  # the row's position in its log (decisions, audit)
    subject: str | None = None  # the pseudonym whose materialized standing differs
    checkpoint: int | None = None  # the ledger size of the checkpoint concerned


@dataclass(slots=True)
class VerifyReport(Result):
    _omit_if_none: ClassVar[tuple[str, ...]] = ("standings", "against")

    ok: bool
    size: int
    root: str | None
    entries: int
    checkpoints: int
    problems: list[VerifyProblem]
    decisions: int = 0  # rows of the decision log read
    audit: int = 0  # rows of the audit log read
    standings: int | None = None  # materialized standings recomputed (`--deep`)
    against: int | None = None  # the size of the published tree head checked (`--against`)


@dataclass(slots=True)
class LogHead(Result):
    """A log's head: how many rows it holds and the chain hash of the last (ledger/chains.py)."""

    count: int
    head: str


@dataclass(slots=True)
class PublishedHead(Result):
    """A tree head to publish (`root --publish`): the ledger's size and root and the logs' heads.

    Not signed with a key: it is the operator's statement, worth what the place it is
    published in is worth (somewhere the registry's operator cannot change it later).
    `verify --against` checks that the registry still extends it.
    """

    _omit_if_none: ClassVar[tuple[str, ...]] = ("decisions", "audit", "published_at", "published_by")

    format: str
    size: int
    root: str
    decisions: LogHead | None = None
    audit: LogHead | None = None
    published_at: str | None = None
    published_by: str | None = None


# -- ratings -----------------------------------------------------------------------------------


@dataclass(slots=True)
class TrustedSubject(Result):
    subject: str
    relative_trust: float


@dataclass(slots=True)
class Ring(Result):
    members: list[str]
    density: float
    inside: int
    outside: int
    mean_trust: float | None
    evidence: str


@dataclass(slots=True)
class TrustReport(Result):
    subjects: int
    ratings: int
    iterations: int
    residual: float
    pretrusted: int
    trust: list[TrustedSubject]
    rings: list[Ring]
    recorded: int


# -- audit -------------------------------------------------------------------------------------


@dataclass(slots=True)
class AuditRecord(Result):
    at: str
    principal: str
    action: str
    subject: str | None
    detail: dict[str, Any]
    role: str | None = None
    purpose: str | None = None


@dataclass(slots=True)
class AuditLog(Result):
    subject: str | None
    entries: list[AuditRecord]


__all__ = [name for name, value in list(globals().items())
           if isinstance(value, type) and issubclass(value, Result)] + ["Reason"]
