"""The registry: a thin facade over focused parts that share one store.

    with Registry.open("sqlite:///town.db") as registry:
        registry.ingest(events)
        registry.standing("110105194912310021", caller=Caller("cli:alice"))
        registry.check("110105194912310021", "transport.rail.high_speed")

    part          module         job
    policies      policies.py    which policy governs which time (activations in the ledger)
    appender      ingest.py      every append: provider events, voids, activations, registry events
    standings     standings.py   materialize, rebuild, read and explain standings
    decisions     decisions.py   decide, log durably (group commit), replay
    ratings       ratings.py     rate, enrol, respond, reviews, global trust
    proofs        proofs.py      tree head, inclusion and consistency proofs, verify, published heads
    audit         audit.py       who read what, when and why
    view          view.py        what this process knows of the ledger, and its caches

One instance may be shared by the threads of a server: the parts guard what they share,
and who is asking (a `Caller`) travels with each call. The CLI, the HTTP API and the web
pages are front doors over this facade; no rule lives in them.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import Conflict, InvalidInput, NotFound
from ..instants import accepted_instant, format_instant, now_us, parse_instant
from ..intake.identity import KeyFileError, Pseudonymizer, create_key_file, load_key
from ..policy.compiled import Policy
from ..policy.load import load_policy
from ..results import (Activation, AuditLog, ConsistencyProof, Created, Decision, EntryWritten, Exported, Explanation,
                       InclusionProof, InForce, IngestResult, LintCounts, PublishedHead, RatingWritten, Rebuilt,
                       Replay, Reviews, StandingReport, TreeHead, TrustReport, VerifyReport, Voided)
from ..scoring.compact import CompactStanding
from ..scoring.engine import Engine, FoldEngine, engine_named  # noqa: F401  (engine_named: for the front doors)
from ..scoring.explain import policy_ref
from ..scoring.fold import Standing
from ..store import Database, Store, parse_url, schema
from ..store.database import Tx, Waiter
from .audit import AuditTrail
from .caller import LIBRARY, Caller
from .decisions import Answer as DecisionAnswer
from .decisions import CheckRequest, Decisions
from .ingest import Appender, RawEvents
from .policies import PolicyBook
from .proofs import Proofs, parse_published
from .ratings import Ratings
from .standings import Standings
from .view import LedgerView

if TYPE_CHECKING:
    from .gateway import Gateway
    from .idempotency import Idempotency
    from .principals import Principals

DEFAULT_URL = "sqlite:///socialcredit.db"

When = str | int | None  # RFC 3339, a date, epoch microseconds, or None for now


def writes(doing: str):
    """A method that writes: on a registry this process cannot write, it is refused before it
    does any work (a batch validated, a check decided), in one line that says why."""

    def decorate(method):
        @functools.wraps(method)
        def refusing_read_only(self, *args, **kwargs):
            self.store.db.require_writable(doing)
            return method(self, *args, **kwargs)

        return refusing_read_only

    return decorate


def key_path_for(url: str) -> Path:
    """Where the pseudonym key lives: beside a SQLite file, else in the working folder."""
    parsed = parse_url(url)
    if parsed.path:
        return Path(parsed.path + ".key")
    return Path(os.environ.get("SOCIALCREDIT_KEY_FILE", "socialcredit.key"))


class Registry:
    def __init__(self, store: Store, pseudonymizer: Pseudonymizer | None, key_problem: Exception | None = None,
                 engine: Engine | None = None):
        self.store = store
        self._pseudonymizer = pseudonymizer
        self._key_problem = key_problem
        self.audit_trail = AuditTrail(store)
        self.policies = PolicyBook(store)
        self.view = LedgerView(store, self.policies)
        self.standings = Standings(store, self.policies, self.view, engine or FoldEngine(), self.audit_trail)
        self.appender = Appender(store, self.policies, self.view, self.standings, self.audit_trail,
                                 lambda: self.pseudonymizer)
        self.decisions = Decisions(store, self.policies, self.view, self.standings, self.audit_trail)
        self.ratings = Ratings(store, self.policies, self.view, self.appender, self.standings, self.audit_trail,
                               self.pseudonym)
        self.proofs = Proofs(store, self.policies, self.standings)

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    def init(cls, url: str = DEFAULT_URL, policy: str | Path | Policy | None = None, *,
             key_file: Path | None = None, caller: Caller = LIBRARY, force: bool = False,
             reason: str | None = None) -> "Registry":
        """Create a registry: schema, pseudonym key (0600 file unless SOCIALCREDIT_KEY is set), policy.

        Nothing is written if anything is wrong: the database must be empty, the key file
        must not exist, and the policy must pass lint (or be forced, with a reason).
        """
        chosen = policy if isinstance(policy, Policy) else load_policy(policy)
        lint_counts = _lint_gate(chosen, force, reason)
        key_file = Path(key_file) if key_file else key_path_for(url)
        from_env = bool(os.environ.get("SOCIALCREDIT_KEY"))
        db = Database.open(url, create=True)
        try:
            schema.refuse_unless_empty(db)
            if not from_env and key_file.exists():
                raise Conflict(f"{key_file} already exists: refusing to replace a registry's key")
            pseudonymizer = load_key(None) if from_env else create_key_file(key_file)
            try:
                schema.create(db, {"created_at": format_instant(now_us()), "key_fingerprint": pseudonymizer.fingerprint})
            except BaseException:
                if not from_env:
                    key_file.unlink(missing_ok=True)
                raise
        except BaseException:
            db.close()
            raise
        registry = cls(Store(db), pseudonymizer)
        registry._activate(chosen, caller, lint_counts, reason if force and lint_counts.error else None, None)
        return registry

    @classmethod
    def open(cls, url: str = DEFAULT_URL, *, key_file: Path | None = None, engine: Engine | None = None,
             on_wait: Waiter | None = None) -> "Registry":
        """Open a registry; `on_wait` hears of every wait for another process's write lock
        (unless a call gives its own), with the seconds waited so far."""
        store = Store.open(url, on_wait=on_wait)
        try:
            try:
                pseudonymizer, problem = load_key(Path(key_file) if key_file else key_path_for(url)), None
            except KeyFileError as exc:
                # An auditor with a copy of the ledger but not the secret key can still
                # verify it, prove entries and replay decisions; naming a subject needs the key.
                pseudonymizer, problem = None, exc
            expected = store.meta.all().get("key_fingerprint")
            if pseudonymizer is not None and expected and expected != pseudonymizer.fingerprint:
                raise KeyFileError("the pseudonym key does not belong to this registry (its fingerprint differs); "
                                   "use the key file created by `socialcredit init`")
            return cls(store, pseudonymizer, problem, engine)
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        self.store.close()

    # -- the service's parts (principals and keys, idempotency, what each party may do) --------

    @functools.cached_property
    def principals(self) -> "Principals":
        from .principals import Principals

        return Principals(self.store, self.pseudonym)

    @functools.cached_property
    def idempotency(self) -> "Idempotency":
        from .idempotency import Idempotency

        return Idempotency(self.store)

    @functools.cached_property
    def gateway(self) -> "Gateway":
        from .gateway import Gateway

        return Gateway(self)

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- identity ------------------------------------------------------------------------------

    @property
    def pseudonymizer(self) -> Pseudonymizer:
        if self._pseudonymizer is None:
            raise self._key_problem or KeyFileError("this registry has no pseudonym key")
        return self._pseudonymizer

    def pseudonym(self, ref: str, kind: str = "person") -> str:
        return self.pseudonymizer.pseudonym(ref, kind)

    def name_pseudonyms(self, refs: Iterable[str], kind: str = "person") -> dict[str, str]:
        """Pseudonym → reference, for references the caller already knows (the ledger has no names)."""
        return {self.pseudonym(ref, kind): ref for ref in refs}

    # -- policies ------------------------------------------------------------------------------

    @property
    def policy(self) -> Policy:
        return self.policies.current

    def policy_at(self, at_us: int, known_at: int | None = None) -> Policy:
        return self.policies.at(at_us, known_at)

    def in_force(self) -> InForce:
        """The activation of the policy in force: when, and whether it was forced past lint errors."""
        activation = self.policies.current_activation()
        if activation is None:
            raise NotFound("this registry has no active policy; run `socialcredit policy activate`")
        forced = activation.body.get("forced") or {}
        return InForce(activation.seq, format_instant(activation.recorded_us), forced.get("reason"), forced.get("by"),
                       forced.get("lint_errors"))

    @writes("put a policy in force")
    def activate(self, policy: Policy, *, caller: Caller = LIBRARY, force: bool = False, reason: str | None = None,
                 on_wait: Waiter | None = None,
                 in_commit: Callable[[Tx, Activation], None] | None = None) -> Activation:
        """Put a policy in force from now (a ledger entry), then rebuild every standing.

        A policy with lint errors is refused unless `force`, with a `reason`, which is kept in
        the activation entry and the audit log. `in_commit` is called with the activation in the
        transaction that writes its entry: what it writes commits with the entry.
        """
        counts = _lint_gate(policy, force, reason)
        return self._activate(policy, caller, counts, reason if force and counts.error else None, on_wait,
                              in_commit)

    def _activate(self, policy: Policy, caller: Caller, counts: LintCounts, forced: str | None,
                  on_wait: Waiter | None, in_commit: Callable[[Tx, Activation], None] | None = None) -> Activation:
        body = {"id": policy.id, "version": policy.version, "digest": policy.digest, "text": policy.text}
        if forced is not None:
            body["forced"] = {"reason": forced, "by": caller.principal, "lint_errors": counts.error}
        dropped = sorted(self.store.ledger.event_types() - set(policy.event_types))
        detail = {"policy": policy.label, "digest": policy.digest, "lint_errors": counts.error, "forced": forced}

        def activation(entry, checkpoint) -> Activation:
            return Activation(entry.seq, policy_ref(policy), checkpoint.size, checkpoint.root.hex(), counts, dropped,
                              forced)

        def answer(tx: Tx, written) -> None:
            in_commit(tx, activation(*written))

        entry, checkpoint = self.appender.append_policy(policy, body, caller, detail, on_wait,
                                                        in_commit=None if in_commit is None else answer)
        from ..store import PolicyActivation

        self.policies.remember(PolicyActivation(entry.seq, entry.recorded_us, policy.digest, body), policy)
        self.standings.rebuild(on_wait=on_wait)
        return activation(entry, checkpoint)

    # -- writing -------------------------------------------------------------------------------

    @writes("ingest")
    def ingest(self, events: RawEvents, *, provider: str | None = None, skip_invalid: bool = False,
               progress: Callable[[int], None] | None = None, on_wait: Waiter | None = None,
               clock: Callable[[], int] | None = None,
               in_commit: Callable[[Tx, IngestResult], None] | None = None) -> IngestResult:
        """Validate every event, then append the new ones in one transaction (or none of them).

        No event may be later than `clock` (default: the system clock) plus the allowed skew.
        `in_commit` as `Appender.ingest` takes it.
        """
        return self.appender.ingest(events, provider=provider, skip_invalid=skip_invalid, progress=progress,
                                    on_wait=on_wait, clock=clock, in_commit=in_commit)

    @writes("void an entry")
    def void(self, seq: int, reason: str, *, caller: Caller = LIBRARY, on_wait: Waiter | None = None) -> Voided:
        """Cancel an event with a correction entry (the original stays, marked as cancelled)."""
        entry = self.appender.void(seq, reason, caller, on_wait)
        head = self.proofs.root()
        return Voided(entry.seq, seq, head.size, head.root)

    @writes("rebuild standings")
    def rebuild_standings(self, *, engine: Engine | None = None, progress: Callable[[int], None] | None = None,
                          on_wait: Waiter | None = None) -> Rebuilt:
        """Throw away every materialized standing and compute them again from the ledger."""
        return self.standings.rebuild(engine=engine, progress=progress, on_wait=on_wait)

    # -- export ------------------------------------------------------------------------------

    def export(self, out: str | Path, *, standings: bool = False, decisions: bool = False,
               progress: Callable[[int], None] | None = None, caller: Caller = LIBRARY) -> Exported:
        """The ledger (and optionally the standings and the decision log) as Parquet files under
        `out`, with a manifest of the checkpoint they were taken at (registry/export.py)."""
        from .export import write_export

        policy = self.policy
        result = write_export(self.store, Path(out), standings=standings, decisions=decisions,
                              policy={"id": policy.id, "version": policy.version, "digest": policy.digest},
                              progress=progress)
        self.audit_trail.record(caller, "export", None, {"size": result.size, "standings": standings,
                                                         "decisions": decisions})
        return result

    def count_to_export(self, *, standings: bool = False, decisions: bool = False) -> int:
        """How many rows `export` writes (for a progress bar)."""
        return (self.size() + (self.store.standings.count() if standings else 0)
                + (self.store.decisions.count() if decisions else 0))

    # -- reading -------------------------------------------------------------------------------

    def standing(self, ref: str, *, kind: str = "person", at: When = None, known_at: int | None = None,
                 caller: Caller = LIBRARY) -> StandingReport:
        """The subject's score, tier, dimensions, lists, measures and ranked reasons (audited)."""
        return self.standings.report(self.pseudonym(ref, kind), instant(at), known_at, caller)

    def standing_of(self, subject: str, *, at: When = None, known_at: int | None = None,
                    caller: Caller = LIBRARY) -> StandingReport:
        """The same, for a subject named by its pseudonym."""
        return self.standings.report(subject, instant(at), known_at, caller)

    def explain(self, ref: str, *, kind: str = "person", at: When = None, caller: Caller = LIBRARY) -> Explanation:
        """Every record about the subject and what it does, in words (audited)."""
        return self.standings.explanation(self.pseudonym(ref, kind), instant(at), caller)

    def fold_subject(self, subject: str, at_us: int, known_at: int | None = None) -> Standing:
        """The reference standing of a pseudonym (not audited: for tests and reports)."""
        return self.standings.fold(subject, at_us, known_at)[0]

    def materialized(self, subject: str) -> CompactStanding | None:
        return self.standings.materialized(subject)

    # -- decisions -----------------------------------------------------------------------------

    @writes("check (every decision is logged)")
    def check(self, ref: str, service: str, *, kind: str = "person", at: When = None,
              caller: Caller = LIBRARY) -> Decision:
        """May this subject use this service at `at` (default now)? Logged before it returns."""
        return self.decisions.check([CheckRequest(self.pseudonym(ref, kind), service, instant(at))], caller)[0]

    @writes("check (every decision is logged)")
    def check_subject(self, subject: str, service: str, at_us: int, *, caller: Caller = LIBRARY) -> Decision:
        return self.decisions.check([CheckRequest(subject, service, at_us)], caller)[0]

    @writes("check (every decision is logged)")
    def check_many(self, requests: Iterable[tuple[str, str]], *, kind: str = "person", at: When = None,
                   caller: Caller = LIBRARY) -> list[Decision]:
        """Decide many (reference, service) pairs at once: one commit for the whole batch."""
        at_us = instant(at)
        return self.decisions.check([CheckRequest(self.pseudonym(ref, kind), service, at_us)
                                     for ref, service in requests], caller)

    @writes("check (every decision is logged)")
    def check_subjects(self, requests: Sequence[CheckRequest], *, caller: Caller = LIBRARY,
                       answers: Sequence[DecisionAnswer | None] | None = None) -> list[Decision]:
        """`check_many` for subjects named by their pseudonyms; `answers` as `Decisions.check` takes them."""
        return self.decisions.check(list(requests), caller, answers)

    def replay(self, decision_id: str, *, caller: Caller = LIBRARY) -> Replay:
        """Recompute a logged decision from the ledger as it was; it must come out the same."""
        return self.decisions.replay(decision_id, caller)

    # -- people rating people ------------------------------------------------------------------

    @writes("rate")
    def rate(self, rater: str, ratee: str, stars: int, *, interaction: str | None = None,
             category: str | None = None, review: str | None = None, at: When = None,
             rater_kind: str = "person", ratee_kind: str = "person") -> RatingWritten:
        return self.ratings.rate(rater, ratee, stars, instant(at), interaction=interaction, category=category,
                                 review=review, rater_kind=rater_kind, ratee_kind=ratee_kind)

    @writes("enrol")
    def enrol(self, ref: str, *, leave: bool = False, at: When = None, attributes: dict | None = None,
              kind: str = "person") -> EntryWritten:
        return self.ratings.enrol(ref, instant(at), leave=leave, attributes=attributes, kind=kind)

    @writes("respond")
    def respond(self, ref: str, entry: int, *, reply: str | None = None, dispute: str | None = None,
                at: When = None, kind: str = "person") -> EntryWritten:
        return self.ratings.respond(ref, entry, instant(at), reply=reply, dispute=dispute, kind=kind)

    def reviews(self, ref: str, *, kind: str = "person", at: When = None, caller: Caller = LIBRARY) -> Reviews:
        return self.ratings.reviews(self.pseudonym(ref, kind), instant(at), caller)

    def trust(self, *, record: bool = False, tol: float = 1e-10, caller: Caller = LIBRARY,
              progress: Callable[[int, float], None] | None = None) -> TrustReport:
        if record:
            self.store.db.require_writable("record trust")
        return self.ratings.trust(caller, record=record, tol=tol, progress=progress)

    # -- tamper evidence -----------------------------------------------------------------------

    def size(self) -> int:
        return self.store.ledger.size()

    def count_entries(self) -> int:
        """How many entries are stored (what `verify` will read)."""
        return self.store.ledger.count()

    def count_subjects(self) -> int:
        """How many subjects have entries (what `rebuild` will fold)."""
        return len(self.store.ledger.subjects())

    def histories(self, subjects: Sequence[str]) -> dict[str, list]:
        """Every entry about each pseudonym (for reports that fold many subjects at once)."""
        return self.store.ledger.entries_for_subjects(subjects)

    def root(self) -> TreeHead:
        return self.proofs.root()

    def inclusion_proof(self, seq: int, size: int | None = None) -> InclusionProof:
        return self.proofs.inclusion(seq, size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> ConsistencyProof:
        return self.proofs.consistency(old_size, new_size)

    def verify(self, progress: Callable[[int], None] | None = None, *, deep: bool = False,
               against: PublishedHead | str | None = None) -> VerifyReport:
        """Recompute the ledger's tree, the key anchor and both logs' hash chains; with `deep`,
        every materialized standing too; with `against` (a published tree head, or its text:
        see `publish`), prove that the ledger still extends it."""
        if isinstance(against, str):
            against = parse_published(against)
        fingerprint = self._pseudonymizer.fingerprint if self._pseudonymizer is not None else None
        return self.proofs.verify(progress, key_fingerprint=fingerprint, deep=deep, against=against)

    def count_to_verify(self, *, deep: bool = False) -> int:
        """How many rows `verify` reads (entries, decisions, audit records; standings with `deep`)."""
        total = self.store.ledger.count() + self.store.decisions.count() + self.store.audit.count()
        return total + (self.store.standings.count() if deep else 0)

    def publish(self, *, caller: Caller = LIBRARY) -> PublishedHead:
        """The tree head and the logs' heads, to publish: `verify(against=...)` later proves the
        registry extends it (catching a rewrite or a cut that verify alone cannot see)."""
        return self.proofs.publish(caller.principal)

    # -- audit ---------------------------------------------------------------------------------

    def audit(self, ref: str | None = None, *, kind: str = "person", limit: int = 100,
              principal: str | None = None, action: str | None = None, caller: Caller = LIBRARY) -> AuditLog:
        """The audit log, newest first (only records about `ref` if given); this read is logged too."""
        subject = None if ref is None else self.pseudonym(ref, kind)
        return self.audit_trail.query(caller, subject=subject, principal=principal, action=action, limit=limit)

    def created(self, db: str, key_file: Path | None = None) -> Created:
        head = self.root()
        if os.environ.get("SOCIALCREDIT_KEY"):
            return Created(db, policy_ref(self.policy), head.size, head.root)
        key = (key_file or key_path_for(db)).resolve()
        database = parse_url(db).path
        beside = database is not None and key.parent == Path(database).resolve().parent
        return Created(db, policy_ref(self.policy), head.size, head.root, str(key), beside)


def instant(at: When) -> int:
    """A time as epoch microseconds: RFC 3339, a date (00:00 UTC), microseconds, or None for now."""
    if at is None:
        return now_us()
    if isinstance(at, int) and not isinstance(at, bool):
        return accepted_instant(at)
    return parse_instant(at, allow_date=True)


def _lint_gate(policy: Policy, force: bool, reason: str | None) -> LintCounts:
    """Lint the policy; refuse one with errors unless forced with a reason."""
    from ..policy.lint import lint, summarize

    counts = LintCounts(**summarize(lint(policy)))
    if force and not (reason and reason.strip()):
        raise InvalidInput("--force needs --reason: say on the record why a policy with lint errors goes live")
    if counts.error and not force:
        raise InvalidInput(f"policy {policy.label} has {counts.error} lint error{'s' if counts.error != 1 else ''} "
                           f"(see `socialcredit policy lint`): refusing to put it in force; fix them, or give "
                           "--force with --reason, which is kept on the record")
    return counts


__all__ = ["DEFAULT_URL", "Caller", "CheckRequest", "Registry", "engine_named", "instant", "key_path_for"]
