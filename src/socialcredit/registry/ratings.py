"""People rating people: rate, enrol, respond to a review, read one's reviews, global trust.

Every rating goes through the same ingest as any provider's `peer.rating` (limits, consent,
the rater's weight fixed at ingest). `trust` runs EigenTrust over all ratings and finds
rating rings; it imports NumPy and SciPy only when it runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable

from ..errors import Conflict, InvalidInput, NotFound
from ..instants import TimeOutOfRange, format_day, format_instant, now_us
from ..intake.validation import configured_clock_skew_us, refuse_future
from ..policy.compiled import Policy
from ..results import EntryWritten, IngestResult, RatingWritten, Reviews, Ring, TrustedSubject, TrustReport
from ..scoring.explain import rating_view
from ..store import Store, Tx
from .audit import AuditTrail
from .caller import Caller
from .ingest import Appender
from .policies import PolicyBook
from .standings import Standings
from .view import LedgerView

RATING_PROVIDER = "peer"


class Ratings:
    def __init__(self, store: Store, policies: PolicyBook, view: LedgerView, appender: Appender,
                 standings: Standings, audit: AuditTrail, pseudonym: Callable[[str, str], str]):
        self._store = store
        self._policies = policies
        self._view = view
        self._appender = appender
        self._standings = standings
        self._audit = audit
        self._pseudonym = pseudonym

    def _spec(self, policy: Policy):
        if policy.ratings is None:
            raise InvalidInput(f"the {policy.id} policy has no ratings (try the nosedive or peeple pack)")
        return policy.ratings

    def rate(self, rater: str, ratee: str, stars: int, at_us: int, *, interaction: str | None = None,
             category: str | None = None, review: str | None = None, rater_kind: str = "person",
             ratee_kind: str = "person") -> RatingWritten:
        """One rating, through the same checks as any ingested `peer.rating`."""
        spec = self._spec(self._policies.current)
        interaction = interaction or f"direct-{format_instant(at_us)}"
        attributes = _rating_attributes(rater, stars, interaction, category, review)
        key = _rating_key(self._pseudonym(rater, rater_kind), self._pseudonym(ratee, ratee_kind), interaction)
        event = {"subject": ratee, "subject_kind": ratee_kind, "type": spec.event, "occurred_at": format_instant(at_us),
                 "provider": RATING_PROVIDER, "key": key, "attributes": attributes}
        return self._rating_written(interaction, lambda: self._one(event))

    def rate_as(self, rater_subject: str, ratee: str, stars: int, at_us: int, *, interaction: str | None = None,
                category: str | None = None, review: str | None = None, ratee_kind: str = "person",
                in_commit: Callable[[Tx, RatingWritten], None] | None = None) -> RatingWritten:
        """`rate` for a rater known only by pseudonym (a subject's API key is bound to one): the
        same event, key, limits, consent and weight, without the rater's reference.

        `in_commit` is called with the rating in the transaction that writes it: what it writes
        commits with the rating (a duplicate writes nothing, and is not given to it)."""
        from ..intake.validation import ValidEvent
        from ..ledger.entries import attributes_json

        policy = self._policies.current
        spec = self._spec(policy)
        interaction = interaction or f"direct-{format_instant(at_us)}"
        attributes = _rating_attributes(rater_subject, stars, interaction, category, review)
        subject = self._pseudonym(ratee, ratee_kind)
        key = _rating_key(rater_subject, subject, interaction)
        _refuse_future(at_us)
        attributes = policy.validate_event(spec.event, attributes, ratee_kind)
        for name, _kind in policy.reference_attributes[spec.event]:
            if name == "rater":
                attributes[name] = rater_subject  # already a pseudonym: not pseudonymized again
        event = ValidEvent(None, subject, ratee_kind, spec.event, at_us, RATING_PROVIDER, key, attributes,
                           attributes_json(attributes))
        def answer(tx: Tx, result: IngestResult) -> None:
            in_commit(tx, self._rating(self._written(result), tx))

        return self._rating_written(interaction, lambda: self._written(self._appender.append_events(
            policy, [event], IngestResult(), skip_invalid=False, in_commit=None if in_commit is None else answer)))

    def _rating_written(self, interaction: str, write: Callable[[], EntryWritten]) -> RatingWritten:
        """A rating's entry written, with the weight and why the registry fixed for it."""
        try:
            written = write()
        except Conflict:
            raise Conflict(f"this rater already rated this subject for interaction {interaction!r}; "
                           "a second rating of the same interaction is refused") from None
        return self._rating(written)

    def _rating(self, written: EntryWritten, tx: Tx | None = None) -> RatingWritten:
        """The rating's entry as written, with the weight and why fixed for it (read in `tx` if given)."""
        derived = self._store.ledger.entry(written.entry, tx).derived if written.entry is not None else None
        return RatingWritten(written.accepted, written.duplicate, written.entry, written.ledger_size, written.root,
                             derived["weight"] if derived else None, derived["why"] if derived else None)

    def enrol(self, ref: str, at_us: int, *, leave: bool = False, attributes: dict | None = None,
              kind: str = "person") -> EntryWritten:
        """Opt in to (or, with `leave`, out of) rating: `peer.opt_in` / `peer.opt_out`."""
        self._spec(self._policies.current)
        event_type = "peer.opt_out" if leave else "peer.opt_in"
        event = {"subject": ref, "subject_kind": kind, "type": event_type, "occurred_at": format_instant(at_us),
                 "provider": RATING_PROVIDER, "key": f"{event_type}:{self._pseudonym(ref, kind)}:{at_us}",
                 "attributes": attributes or {}}
        return self._one(event)

    def respond(self, ref: str, entry: int, at_us: int, *, reply: str | None = None, dispute: str | None = None,
                kind: str = "person") -> EntryWritten:
        """The subject replies to a review about them, or disputes it during its hold."""
        policy = self._policies.current
        spec = self._spec(policy)
        if (reply is None) == (dispute is None):
            raise InvalidInput("give either a reply or a dispute")
        target = self._store.ledger.entry(entry)
        subject = self._pseudonym(ref, kind)
        if target is None or target.type != spec.event or target.subject != subject:
            raise NotFound(f"entry #{entry} is not a review of this subject")
        if at_us < target.occurred_us:
            raise InvalidInput(f"entry #{entry} was written on {format_instant(target.occurred_us)}: "
                               "a response cannot come before it")
        event_type, attributes = (("peer.review_reply", {"entry": entry, "text": reply}) if reply is not None
                                  else ("peer.review_disputed", {"entry": entry, "reason": dispute}))
        if event_type not in policy.event_types:
            raise InvalidInput(f"the {policy.id} policy has no {event_type} (no replies or disputes)")
        if dispute is not None:
            _refuse_future(at_us)  # first: a dispute dated in the future is that, not a late one
            _check_dispute_window(policy, entry, target, at_us)
        event = {"subject": ref, "subject_kind": kind, "type": event_type, "occurred_at": format_instant(at_us),
                 "provider": RATING_PROVIDER, "key": f"{event_type}:{entry}:{at_us}", "attributes": attributes}
        return self._one(event)

    def reviews(self, subject: str, at_us: int, caller: Caller) -> Reviews:
        """What the subject sees of the ratings about them: held ones marked, replies attached."""
        standing, _size = self._standings.fold(subject, at_us)
        self._audit.record(caller, "reviews", subject, {"at": format_instant(at_us)})
        policy = standing.policy
        return Reviews(subject, format_instant(at_us), standing.score if policy.scored else None,
                       {d.id: v for d, v in zip(policy.dimensions, standing.dimensions)},
                       [rating_view(policy, r) for r in standing.ratings])

    def _one(self, event: dict) -> EntryWritten:
        return self._written(self._appender.ingest([event]))

    @staticmethod
    def _written(result: IngestResult) -> EntryWritten:
        if result.errors:
            message = result.errors[0].error
            if "already used for a different event" in message:
                raise Conflict(message)
            raise InvalidInput(message)
        seq = result.ledger_size - 1 if result.accepted else None
        return EntryWritten(result.accepted, bool(result.duplicates), seq, result.ledger_size, result.root)

    # -- global trust -------------------------------------------------------------------------

    def trust(self, caller: Caller, *, record: bool = False, tol: float = 1e-10,
              progress: Callable[[int, float], None] | None = None) -> TrustReport:
        """EigenTrust over every rating in the ledger, and the rating rings it reveals.

        With `record`, the results go into the ledger as `peer.trust` (relative trust) and
        `peer.collusion_flag` events, where the policy declares those types, so a policy can
        use them (a `latest` dimension, a rater-weight source, a list of suspects) and every
        standing stays a fold of its own entries.
        """
        import numpy as np

        from ..ratings import collusion
        from ..ratings import trust as eigentrust

        policy = self._policies.current
        spec = self._spec(policy)
        triples = self._live_ratings(spec.event)
        subjects, raters, ratees = eigentrust.index_subjects([t[1] for t in triples], [t[0] for t in triples])
        n = len(subjects)
        if n == 0:
            self._audit.record(caller, "trust", None, {"subjects": 0, "ratings": 0, "rings": 0})
            return TrustReport(0, 0, 0, 0.0, 0, [], [], 0)
        stars = np.fromiter((t[2] for t in triples), np.int64, len(triples))
        position = {s: i for i, s in enumerate(subjects)}
        seeds = np.array([position[p] for p in (self._pseudonym(ref, "person") for ref in spec.pretrusted)
                          if p in position], dtype=np.int64)
        local = eigentrust.local_trust(raters, ratees, stars, n, spec.negative_at_most)
        outcome = eigentrust.eigentrust(local, eigentrust.pretrusted_vector(n, seeds), spec.trust_teleport, tol=tol,
                                        progress=progress)
        relative = outcome.relative()
        # Trust says something about a group only relative to pre-trusted seeds; without
        # seeds every closed group keeps its own share, so only structure is used then.
        rings = collusion.find_rings(raters, ratees, stars, n, relative_trust=relative if len(seeds) else None)
        recorded = self._record_trust(policy, subjects, relative, rings) if record else 0
        self._audit.record(caller, "trust", None, {"subjects": n, "ratings": len(triples), "rings": len(rings),
                                                   "recorded": recorded})
        order = np.argsort(-relative, kind="stable")
        return TrustReport(
            n, len(triples), outcome.iterations, float(outcome.residual), len(seeds),
            [TrustedSubject(subjects[i], float(relative[i])) for i in order],
            [Ring([subjects[m] for m in ring.members], ring.density, ring.inside, ring.outside, ring.mean_trust,
                  ring.evidence()) for ring in rings],
            recorded,
        )

    def _live_ratings(self, event_type: str) -> list[tuple[str, str, int]]:
        """(ratee, rater, stars) of every rating not cancelled by a void, in ledger order."""
        voided = self._store.ledger.void_targets()
        return [(subject, actor, json.loads(body)["attributes"]["stars"])
                for seq, subject, actor, body in self._store.ledger.rows_of_type(event_type) if seq not in voided]

    def _record_trust(self, policy: Policy, subjects: list[str], relative, rings) -> int:
        now = now_us()
        size = self._store.ledger.size()
        event = self._appender.registry_event
        events = []
        if "peer.trust" in policy.event_types:
            events += [event(policy, subjects[i], "peer.trust", now, f"trust:{size}:{subjects[i]}",
                             {"value": round(float(relative[i]), 6)}) for i in range(len(subjects))]
        if "peer.collusion_flag" in policy.event_types:
            for number, ring in enumerate(rings, start=1):
                ring_id = f"ring-{size}-{number}"
                events += [event(policy, subjects[m], "peer.collusion_flag", now, f"{ring_id}:{subjects[m]}",
                                 {"ring": ring_id, "members": len(ring.members), "evidence": ring.evidence()})
                           for m in ring.members]
        if not events:
            return 0
        outcome = self._appender.append_events(policy, events, IngestResult(), skip_invalid=False)
        if outcome.errors:
            raise Conflict(f"the trust results were not recorded: {outcome.errors[0].error}")
        return outcome.accepted


def _refuse_future(at_us: int) -> None:
    try:
        refuse_future(at_us, now_us(), configured_clock_skew_us())
    except TimeOutOfRange as exc:
        raise TimeOutOfRange(f"occurred_at: {exc}") from None  # as the same event's validation would say


def _check_dispute_window(policy: Policy, entry: int, target, at_us: int) -> None:
    """A dispute is of a held review (a negative one), and only during its hold."""
    spec = policy.ratings
    if policy.hold_negative is None or target.attributes.get("stars", 5) > spec.negative_at_most:
        raise InvalidInput(f"review #{entry} is not held (only negative reviews are held, and only they can be "
                           "disputed): reply to it instead")
    hold_until = policy.hold_negative.after(target.occurred_us)
    if at_us >= hold_until:
        raise InvalidInput(f"the hold of review #{entry} ended on {format_day(hold_until, policy.zone)}: a dispute "
                           "must come during the hold; reply to it instead")


def _rating_attributes(rater: str, stars: int, interaction: str, category: str | None,
                       review: str | None) -> dict:
    attributes = {"rater": rater, "stars": stars, "interaction": interaction}
    if category is not None:
        attributes["category"] = category
    if review is not None:
        attributes["review"] = review
    return attributes


def _rating_key(rater_pseudonym: str, ratee_pseudonym: str, interaction: str) -> str:
    """The key names the interaction, so rating it again is a duplicate or a conflict."""
    pair = "\x1f".join((rater_pseudonym, ratee_pseudonym, interaction))
    return "rating:" + hashlib.sha256(pair.encode()).hexdigest()[:32]
