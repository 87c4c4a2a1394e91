"""The library facade: one object that ties ledger, policy, scoring and decisions together.

    with Registry.open("sqlite:///town.db") as registry:
        registry.ingest(events)
        registry.standing("110105194912310021")
        registry.check("110105194912310021", "transport.rail.high_speed")

The CLI and (later) the HTTP API are thin shells over this class.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sqlalchemy.engine import make_url

from . import _forked
from .errors import InvalidInput
from .instants import format_instant, now_us, parse_instant
from .scoring.decide import Decision, decide
from .ledger import merkle
from .ledger.entries import EVENT, POLICY, VOID, Entry, attributes_json, canonical_json, stored_event_content
from .intake.identity import KeyFileError, Pseudonymizer, create_key_file, load_key
from .intake.validation import InputError, ValidEvent, Validator
from .store.database import Checkpoint, Store, StoreError, entry_row
from .policy.compiled import Policy
from .policy.load import load_policy, parse_policy
from .ratings import collusion
from .ratings import intake as ratings_intake
from .ratings import trust as trust_module
from .scoring.explain import core, explain_entries, measure_dict, rating_dict, reason_dict, summarize
from .scoring.fold import Standing, fold

DEFAULT_URL = "sqlite:///socialcredit.db"
_MATERIALIZE_CHUNK = 2_000
_FORK_MIN_SUBJECTS = 2_000  # below this, forking a worker costs more than it saves
_DECISION_BUFFER = 10_000
_DECISION_MAX_AGE_S = 1.0


class RegistryError(InvalidInput):
    """A request the registry cannot carry out; the message says why in one line."""


@dataclass
class IngestResult:
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    errors: list[dict] = field(default_factory=list)
    ledger_size: int = 0
    root: str | None = None
    written: bool = False

    def to_dict(self) -> dict:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "errors": self.errors,
            "ledger_size": self.ledger_size,
            "root": self.root,
            "written": self.written,
        }


@dataclass
class VerifyReport:
    ok: bool
    size: int
    root: str | None
    entries: int
    checkpoints: int
    problems: list[dict]

    def to_dict(self) -> dict:
        return {
            "ok": self.ok,
            "size": self.size,
            "root": self.root,
            "entries": self.entries,
            "checkpoints": self.checkpoints,
            "problems": self.problems,
        }


class _HistoryCache:
    """Parsed entries per subject, as of ledger size `size`.

    Entries never change, so a subject's history, once read, only grows: ingest appends to
    it instead of reading and parsing it again. Bounded: the least recently used go first.
    """

    def __init__(self, capacity: int = 200_000):
        self.capacity = capacity
        self.size = 0
        self._items: OrderedDict[str, list[Entry]] = OrderedDict()

    def get(self, subject: str) -> list[Entry] | None:
        history = self._items.get(subject)
        if history is not None:
            self._items.move_to_end(subject)
        return history

    def put(self, subject: str, history: list[Entry]) -> None:
        self._items[subject] = history
        self._items.move_to_end(subject)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def forget(self, subjects: Iterable[str] | None) -> None:
        if subjects is None:
            self._items.clear()
            return
        for subject in subjects:
            self._items.pop(subject, None)


class _Cached:
    """A materialized standing held in memory for checks: valid on [valid_from, valid_until)."""

    __slots__ = ("policy_digest", "valid_from", "valid_until", "cacheable", "score", "tier", "measures")

    def __init__(self, data: dict, cacheable: bool):
        self.policy_digest = data["policy"]
        self.valid_from = data["valid_from"]
        self.valid_until = data["valid_until"]
        self.cacheable = cacheable
        self.score = data["score"]
        self.tier = data["tier"]
        self.measures = {mid: (until, reasons) for mid, until, reasons in data["measures"]}

    def covers(self, at_us: int, digest: str) -> bool:
        return (
            self.cacheable
            and self.policy_digest == digest
            and (self.valid_from is None or self.valid_from <= at_us)
            and (self.valid_until is None or at_us < self.valid_until)
        )


def key_path_for(url: str) -> Path:
    """Where the pseudonym key lives: beside a SQLite file, else in the working folder."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database:
        return Path(parsed.database + ".key")
    return Path(os.environ.get("SOCIALCREDIT_KEY_FILE", "socialcredit.key"))


class Registry:
    def __init__(self, store: Store, pseudonymizer: Pseudonymizer | None, principal: str = "library",
                 key_problem: Exception | None = None):
        self.store = store
        self._pseudonymizer = pseudonymizer
        self._key_problem = key_problem
        self.principal = principal
        self._decision_prefix = secrets.token_hex(5)
        self._decision_counter = 0
        self._decisions: list[tuple] = []
        self._decisions_since = time.monotonic()
        self._cache: dict[str, _Cached] = {}
        self._history = _HistoryCache()
        self._load_policies()
        self._size = store.size()
        self.freshness_s = 0.05
        self._synced = time.monotonic()

    # -- opening and closing -------------------------------------------------------------------

    @classmethod
    def init(cls, url: str = DEFAULT_URL, policy: str | Path | Policy | None = None,
             key_file: Path | None = None, principal: str = "library") -> "Registry":
        """Create a registry: schema, pseudonym key (0600 file unless SOCIALCREDIT_KEY is set), policy."""
        chosen = policy if isinstance(policy, Policy) else load_policy(policy)
        key_file = key_file or key_path_for(url)
        from_env = bool(os.environ.get("SOCIALCREDIT_KEY"))
        store = Store.open(url, create=True)
        try:
            store.ensure_empty()
            if not from_env and key_file.exists():
                raise RegistryError(f"{key_file} already exists: refusing to replace a registry's key")
            store.initialize({"created_at": format_instant(now_us())})
            pseudonymizer = load_key(None) if from_env else create_key_file(key_file)
            store.set_meta("key_fingerprint", pseudonymizer.fingerprint)
        except Exception:
            store.close()
            raise
        registry = cls(store, pseudonymizer, principal)
        registry.activate(chosen)
        return registry

    @classmethod
    def open(cls, url: str = DEFAULT_URL, key_file: Path | None = None, principal: str = "library") -> "Registry":
        store = Store.open(url)
        try:
            try:
                pseudonymizer, problem = load_key(key_file or key_path_for(url)), None
            except KeyFileError as exc:
                # An auditor with a copy of the ledger but not the secret key can still
                # verify it, prove entries and replay decisions; naming a subject needs the key.
                pseudonymizer, problem = None, exc
            expected = store.meta().get("key_fingerprint")
            if pseudonymizer is not None and expected and expected != pseudonymizer.fingerprint:
                raise RegistryError(
                    "the pseudonym key does not belong to this registry (its fingerprint differs); "
                    "use the key file created by `socialcredit init`"
                )
            return cls(store, pseudonymizer, principal, problem)
        except Exception:
            store.close()
            raise

    @property
    def pseudonymizer(self) -> Pseudonymizer:
        if self._pseudonymizer is None:
            raise self._key_problem or RegistryError("this registry has no pseudonym key")
        return self._pseudonymizer

    def close(self) -> None:
        self.flush()
        self.store.close()

    def __enter__(self) -> "Registry":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- policies ------------------------------------------------------------------------------

    def _load_policies(self) -> None:
        self._policies: list[tuple[int, int, Policy]] = []
        self._policy_by_digest: dict[str, Policy] = {}
        for entry in self.store.policy_entries():
            self._remember_policy(entry)

    def _remember_policy(self, entry: Entry) -> None:
        policy = self._policy_by_digest.get(entry.policy["digest"])
        if policy is None:
            policy = parse_policy(entry.policy["text"], source=f"ledger entry #{entry.seq}")
            self._policy_by_digest[policy.digest] = policy
        self._policies.append((entry.seq, entry.recorded_us, policy))

    @property
    def policy(self) -> Policy:
        if not self._policies:
            raise RegistryError("this registry has no active policy; run `socialcredit policy activate`")
        return self._policies[-1][2]

    def policy_at(self, at_us: int, known_at: int | None = None) -> Policy:
        """The policy in force at `at_us`, among the activations known at `known_at`."""
        known = [p for p in self._policies if known_at is None or p[0] < known_at]
        if not known:
            raise RegistryError("no policy was active at that ledger size")
        in_force = [p for p in known if p[1] <= at_us]
        return (in_force[-1] if in_force else known[0])[2]

    def activate(self, policy: Policy) -> int:
        """Put a policy in force from now: a ledger entry, then every standing is rebuilt."""
        body = {"id": policy.id, "version": policy.version, "digest": policy.digest, "text": policy.text}
        entry = self._append_one(lambda seq, at: Entry(seq, POLICY, at, policy=body))
        self._remember_policy(entry)
        self.rebuild_standings()
        return entry.seq

    # -- ingest --------------------------------------------------------------------------------

    def validator(self, provider: str | None = None, clock: Callable[[], int] | None = None) -> Validator:
        return Validator(self.policy, self.pseudonymizer, provider, clock=clock)

    def ingest(self, events: Iterable[tuple[int | None, dict | InputError] | dict], *, provider: str | None = None,
               skip_invalid: bool = False, progress: Callable[[int], None] | None = None,
               clock: Callable[[], int] | None = None) -> IngestResult:
        """Validate every event, then append the new ones in one transaction (or none of them).

        `events` are dicts, or (line, dict | InputError) pairs from `read_events`. With
        `skip_invalid` the good events go in and the bad ones are listed; without it one bad
        event refuses the whole batch and nothing is written. `clock` is the registry's time,
        which no event may be later than (beyond the allowed skew); default the system clock,
        a simulation passes its own.
        """
        with _no_cyclic_gc():
            return self._ingest(events, provider, skip_invalid, progress, clock)

    def _ingest(self, events, provider, skip_invalid, progress, clock) -> IngestResult:
        validator = self.validator(provider, clock)
        valid: list[ValidEvent] = []
        errors: list[dict] = []
        for number, item in enumerate(events, start=1):
            line, raw = item if isinstance(item, tuple) else (number, item)
            if isinstance(raw, InputError):
                errors.append({"line": line, "error": raw.message})
            else:
                try:
                    valid.append(validator.validate(raw, line))
                except InputError as exc:
                    errors.append({"line": line, "error": exc.message})
            if progress is not None:
                progress(1)
        result = IngestResult(rejected=len(errors), errors=errors)
        if errors and not skip_invalid:
            result.ledger_size, result.root = self._size, self.root()["root"]
            return result
        return self._append_valid(valid, result, skip_invalid)

    def _append_valid(self, valid: list[ValidEvent], result: IngestResult, skip_invalid: bool) -> IngestResult:
        """Deduplicate, check ratings, append, checkpoint and materialize, in one transaction."""
        with self.store.appending() as conn:
            checkpoint = self.store.last_checkpoint(conn)
            size = checkpoint.size if checkpoint else 0
            if self._catch_up(size):
                raise RegistryError(f"another process put policy {self.policy.label} in force while this batch was "
                                    "being checked; nothing was written: send it again")
            existing = self.store.existing_events(conn, [(e.provider, e.key) for e in valid]) if size else {}
            fresh, conflicts = _sort_out(valid, existing, result)
            assessment = ratings_intake.assess(self.policy, self.store, conn, fresh,
                                               lambda subjects: self._prior_histories(conn, subjects, size))
            conflicts += [{"line": fresh[i].line, "error": message} for i, message in sorted(assessment.errors.items())]
            if conflicts:
                result.errors.extend(conflicts)
                result.rejected += len(conflicts)
                if not skip_invalid:
                    result.duplicates = 0
                    result.ledger_size = size
                    result.root = (checkpoint.root if checkpoint else merkle.EMPTY_ROOT).hex()
                    return result  # the transaction holds no writes yet; leaving it rolls back
            if assessment.errors:
                derived = [assessment.derived.get(i) for i in range(len(fresh)) if i not in assessment.errors]
                fresh = [e for i, e in enumerate(fresh) if i not in assessment.errors]
            else:
                derived = [assessment.derived.get(i) for i in range(len(fresh))]
            if not fresh:
                result.ledger_size = size
                result.root = checkpoint.root.hex() if checkpoint else merkle.EMPTY_ROOT.hex()
                return result
            recorded = now_us()
            new_entries = [
                Entry(size + i, EVENT, recorded, e.subject, e.subject_kind, e.type, e.occurred_us, e.provider, e.key,
                      e.attributes, None, None, None, e.attributes_json, derived[i])
                for i, e in enumerate(fresh)
            ]
            histories = self._histories(conn, new_entries, size)
            # Fold the standings in a forked child while this process hashes and writes the
            # entries: the two are independent and take about as long as each other.
            folding = _forked.start(self._standing_rows, histories.items(), size + len(new_entries), recorded,
                                    fork=len(histories) >= _FORK_MIN_SUBJECTS)
            try:
                rows, checkpoint = self._prepare(checkpoint, new_entries)
                self.store.append(conn, rows, checkpoint)
                standings = folding.result()
            except BaseException:
                folding.cancel()
                raise
            self.store.put_standings(conn, standings)
        result.accepted = len(fresh)
        result.written = bool(fresh)
        result.ledger_size = checkpoint.size
        result.root = checkpoint.root.hex()
        self._after_append(checkpoint.size, set(histories), histories)
        return result

    def void(self, seq: int, reason: str) -> int:
        """Cancel an event with a new entry that names it and says why (nothing is deleted)."""
        if not reason or not reason.strip():
            raise RegistryError("a correction needs a reason")
        target = self.store.entry(seq)
        if target is None or target.kind != EVENT:
            raise RegistryError(f"entry #{seq} is not an event in this ledger")
        already = [e for e in self.store.entries_for_subject(target.subject) if e.kind == VOID and e.target == seq]
        if already:
            raise RegistryError(f"entry #{seq} was already cancelled by entry #{already[0].seq}")
        # The void names the same actor (a rater) as the entry it cancels, so the rater's daily
        # cap and reviewer record can leave cancelled ratings out.
        references = self.policy.reference_attributes.get(target.type, ())
        actor = target.attributes.get(references[0][0]) if references else None
        entry = self._append_one(lambda s, at: Entry(s, VOID, at, subject=target.subject, target=seq,
                                                     reason=reason.strip()), actor)
        return entry.seq

    def _append_one(self, make: Callable[[int, int], Entry], actor: str | None = None) -> Entry:
        with self.store.appending() as conn:
            checkpoint = self.store.last_checkpoint(conn)
            size = checkpoint.size if checkpoint else 0
            self._catch_up(size)
            recorded = now_us()
            entry = make(size, recorded)
            rows, checkpoint = self._prepare(checkpoint, [entry], {entry.seq: actor} if actor else None)
            self.store.append(conn, rows, checkpoint)
            histories = self._histories(conn, [entry], size) if entry.subject is not None else {}
            self.store.put_standings(conn, self._standing_rows(histories.items(), checkpoint.size, recorded))
        self._after_append(checkpoint.size, set(histories), histories)
        return entry

    def _prepare(self, checkpoint: Checkpoint | None, entries: list[Entry],
                 actors: dict[int, str] | None = None) -> tuple[list[tuple], Checkpoint]:
        """Canonical bodies, leaf hashes and the checkpoint that will cover them."""
        frontier = merkle.Frontier.from_json(checkpoint.size, checkpoint.frontier) if checkpoint else merkle.Frontier()
        rows = []
        recorded_at = format_instant(entries[0].recorded_us) if entries else None
        references = {t: r[0][0] for t, r in self.policy.reference_attributes.items() if r} if self._policies else {}
        actors = actors or {}
        for entry in entries:
            body = entry.canonical(recorded_at)
            leaf = merkle.leaf_hash(body.encode("utf-8"))
            frontier.append(leaf)
            if references or actors:  # who acted: a rater, or the rater of a cancelled rating
                named = references.get(entry.type)
                actor = entry.attributes.get(named) if named else actors.get(entry.seq)
            else:
                actor = None
            rows.append(entry_row(entry, body, leaf, actor))
        return rows, Checkpoint(frontier.size, frontier.root(), frontier.to_json(), now_us())

    def _after_append(self, size: int, subjects: set[str], histories: dict[str, list[Entry]] | None = None) -> None:
        self._size = size
        for subject in subjects:
            self._cache.pop(subject, None)
        for subject, history in (histories or {}).items():
            self._history.put(subject, history)
        self._history.size = size

    # -- standings -----------------------------------------------------------------------------

    def _histories(self, conn, new_entries: list[Entry], first_new: int) -> dict[str, list[Entry]]:
        """Every entry about each subject the new entries touch: what was there, then the new."""
        by_subject: dict[str, list[Entry]] = {}
        for entry in new_entries:
            by_subject.setdefault(entry.subject, []).append(entry)
        prior = self._prior_histories(conn, sorted(by_subject), first_new)
        return {subject: prior.get(subject, []) + new for subject, new in by_subject.items()}

    def _prior_histories(self, conn, subjects: list[str], size: int) -> dict[str, list[Entry]]:
        """The entries (< size) about each subject, from the history cache or the store."""
        if self._history.size != size:
            # Someone else appended since this process last looked: forget what they touched.
            self._history.forget(self.store.subjects_since(self._history.size) if self._history.size else None)
            self._history.size = size
        found: dict[str, list[Entry]] = {}
        missing = []
        for subject in subjects:
            history = self._history.get(subject)
            if history is None:
                missing.append(subject)
            else:
                found[subject] = history
        for start in range(0, len(missing), _MATERIALIZE_CHUNK):
            chunk = missing[start : start + _MATERIALIZE_CHUNK]
            read = self.store.entries_for_subjects(chunk, conn, before=size) if size else {}
            for subject in chunk:
                found[subject] = read.get(subject, [])
        return found

    def _standing_rows(self, histories: Iterable[tuple[str, list[Entry]]], size: int, as_of: int) -> list[tuple]:
        """Materialized standings: `core(fold(...))` of each (subject, history), now, under the policy in force."""
        if not self._policies:
            return []
        policy = self.policy
        return [_standing_row(fold(policy, history, as_of, None, subject), size) for subject, history in histories]

    def rebuild_standings(self, progress: Callable[[int], None] | None = None) -> int:
        """Throw away every materialized standing and fold them again from the ledger."""
        with self.store.appending() as conn:
            self.store.clear_standings(conn)
            subjects = sorted(self.store.subjects(conn))
            size = (self.store.last_checkpoint(conn) or Checkpoint(0, b"", [], 0)).size
            as_of = now_us()
            policy = self.policy
            for start in range(0, len(subjects), _MATERIALIZE_CHUNK):
                chunk = subjects[start : start + _MATERIALIZE_CHUNK]
                histories = self.store.entries_for_subjects(chunk, conn)
                rows = [_standing_row(fold(policy, histories.get(s, []), as_of, None, s), size) for s in chunk]
                self.store.put_standings(conn, rows)
                if progress is not None:
                    progress(len(chunk))
        self._cache.clear()
        return len(subjects)

    def pseudonym(self, ref: str, kind: str = "person") -> str:
        return self.pseudonymizer.pseudonym(ref, kind)

    def fold_subject(self, subject: str, at_us: int, known_at: int | None = None) -> Standing:
        """The reference fold for a pseudonym: entries from the ledger, the policy then in force."""
        entries = self.store.entries_for_subject(subject)
        policy = self.policy_at(at_us, known_at)
        return fold(policy, entries, at_us, known_at, subject)

    def standing(self, ref: str, *, kind: str = "person", at: str | int | None = None,
                 known_at: int | None = None) -> dict:
        """The subject's standing as plain data (score, tier, dimensions, lists, measures, reasons)."""
        subject = self.pseudonym(ref, kind)
        at_us = _instant(at)
        known_at = self._check_known_at(known_at)
        standing = self.fold_subject(subject, at_us, known_at)
        self._audit("standing", subject, {"at": format_instant(at_us), "known_at": known_at})
        summary = summarize(standing)
        summary.update(subject=subject, at=format_instant(at_us),
                       known_at=known_at if known_at is not None else self._size,
                       entries=len(standing.events))
        if standing.policy.ratings is not None:
            summary["ratings"] = [rating_dict(standing.policy, r) for r in standing.ratings]
        return summary

    def explain(self, ref: str, *, kind: str = "person", at: str | int | None = None) -> dict:
        """Every entry about the subject and what it contributes, in words."""
        subject = self.pseudonym(ref, kind)
        at_us = _instant(at)
        standing = self.fold_subject(subject, at_us)
        self._audit("explain", subject, {"at": format_instant(at_us)})
        summary = summarize(standing)
        summary.update(subject=subject, at=format_instant(at_us), known_at=self._size,
                       entries=explain_entries(standing))
        return summary

    # -- people rating people ------------------------------------------------------------------

    def rate(self, rater: str, ratee: str, stars: int, *, interaction: str | None = None,
             category: str | None = None, review: str | None = None, at: str | int | None = None,
             rater_kind: str = "person", ratee_kind: str = "person") -> dict:
        """One rating, through the same checks as any ingested `peer.rating`. Returns its entry."""
        spec = self._ratings_spec()
        at_us = _instant(at)
        interaction = interaction or f"direct-{format_instant(at_us)}"
        attributes = {"rater": rater, "stars": stars, "interaction": interaction}
        if category is not None:
            attributes["category"] = category
        if review is not None:
            attributes["review"] = review
        # The key names the interaction, so rating it again is a duplicate or a conflict.
        key = "rating:" + hashlib.sha256("\x1f".join(
            (self.pseudonym(rater, rater_kind), self.pseudonym(ratee, ratee_kind), interaction)).encode()).hexdigest()[:32]
        event = {"subject": ratee, "subject_kind": ratee_kind, "type": spec.event, "occurred_at": format_instant(at_us),
                 "provider": "peer", "key": key, "attributes": attributes}
        try:
            return self._one(event)
        except RegistryError as exc:
            if "already used for a different event" in str(exc):
                raise RegistryError(f"this rater already rated this subject for interaction {interaction!r}; "
                                    "a second rating of the same interaction is refused") from None
            raise

    def enrol(self, ref: str, *, out: bool = False, at: str | int | None = None, attributes: dict | None = None,
              kind: str = "person") -> dict:
        """Opt in to (or, with `out`, out of) rating: `peer.opt_in` / `peer.opt_out`."""
        self._ratings_spec()
        at_us = _instant(at)
        event_type = "peer.opt_out" if out else "peer.opt_in"
        event = {"subject": ref, "subject_kind": kind, "type": event_type, "occurred_at": format_instant(at_us),
                 "provider": "peer", "key": f"{event_type}:{self.pseudonym(ref, kind)}:{at_us}",
                 "attributes": attributes or {}}
        return self._one(event)

    def respond(self, ref: str, entry: int, *, reply: str | None = None, dispute: str | None = None,
                at: str | int | None = None, kind: str = "person") -> dict:
        """The subject replies to a review about them, or disputes it during its hold."""
        self._ratings_spec()
        if (reply is None) == (dispute is None):
            raise RegistryError("give either a reply or a dispute")
        target = self.store.entry(entry)
        subject = self.pseudonym(ref, kind)
        if target is None or target.type != self.policy.ratings.event or target.subject != subject:
            raise RegistryError(f"entry #{entry} is not a review of this subject")
        at_us = _instant(at)
        if at_us < target.occurred_us:
            raise RegistryError(f"entry #{entry} was written on {format_instant(target.occurred_us)}: "
                                "a response cannot come before it")
        event_type, attributes = (("peer.review_reply", {"entry": entry, "text": reply}) if reply is not None
                                  else ("peer.review_disputed", {"entry": entry, "reason": dispute}))
        if event_type not in self.policy.event_types:
            raise RegistryError(f"the {self.policy.id} policy has no {event_type} (no replies or disputes)")
        event = {"subject": ref, "subject_kind": kind, "type": event_type, "occurred_at": format_instant(at_us),
                 "provider": "peer", "key": f"{event_type}:{entry}:{at_us}", "attributes": attributes}
        return self._one(event)

    def reviews(self, ref: str, *, kind: str = "person", at: str | int | None = None) -> dict:
        """What the subject sees of the ratings about them: held ones marked, replies attached."""
        subject = self.pseudonym(ref, kind)
        at_us = _instant(at)
        standing = self.fold_subject(subject, at_us)
        self._audit("reviews", subject, {"at": format_instant(at_us)})
        return {
            "subject": subject,
            "at": format_instant(at_us),
            "score": standing.score,
            "dimensions": {d.id: v for d, v in zip(standing.policy.dimensions, standing.dimensions)},
            "reviews": [rating_dict(standing.policy, r) for r in standing.ratings],
        }

    def trust(self, *, record: bool = True, tol: float = 1e-10,
              progress: Callable[[int, float], None] | None = None) -> dict:
        """EigenTrust over every rating in the ledger, and the rating rings it reveals.

        With `record`, the results go into the ledger as `peer.trust` (relative trust) and
        `peer.collusion_flag` events, where the policy declares those types, so a policy can
        use them (a `latest` dimension, a rater-weight source, a list of suspects) and every
        standing stays a fold of its own entries.
        """
        spec = self._ratings_spec()
        triples = self.store.rating_triples(spec.event)
        subjects, raters, ratees = trust_module.index_subjects([t[1] for t in triples], [t[0] for t in triples])
        stars = np.fromiter((t[2] for t in triples), np.int64, len(triples))
        n = len(subjects)
        if n == 0:
            return {"subjects": 0, "ratings": 0, "iterations": 0, "trust": [], "rings": [], "recorded": 0}
        position = {s: i for i, s in enumerate(subjects)}
        seeds = np.array([position[p] for p in (self.pseudonym(ref) for ref in spec.pretrusted) if p in position],
                         dtype=np.int64)
        local = trust_module.local_trust(raters, ratees, stars, n, spec.negative_at_most)
        result = trust_module.eigentrust(local, trust_module.pretrusted_vector(n, seeds), spec.trust_teleport,
                                         tol=tol, progress=progress)
        relative = result.relative()
        # Trust says something about a group only relative to pre-trusted seeds; without
        # seeds every closed group keeps its own share, so only structure is used then.
        rings = collusion.find_rings(raters, ratees, stars, n, relative_trust=relative if len(seeds) else None)
        now = now_us()
        size = self.store.size()
        self._catch_up(size)
        recorded = 0
        if record:
            events = []
            if "peer.trust" in self.policy.event_types:
                events += [self._derived_event(subjects[i], "peer.trust", now, f"trust:{size}:{subjects[i]}",
                                               {"value": round(float(relative[i]), 6)}) for i in range(n)]
            if "peer.collusion_flag" in self.policy.event_types:
                for number, ring in enumerate(rings, start=1):
                    ring_id = f"ring-{size}-{number}"
                    events += [self._derived_event(subjects[m], "peer.collusion_flag", now, f"{ring_id}:{subjects[m]}",
                                                   {"ring": ring_id, "members": len(ring.members),
                                                    "evidence": ring.evidence()}) for m in ring.members]
            if events:
                outcome = self._append_valid(events, IngestResult(), skip_invalid=False)
                if outcome.errors:
                    raise RegistryError(f"the trust results were not recorded: {outcome.errors[0]['error']}")
                recorded = outcome.accepted
        order = np.argsort(-relative, kind="stable")
        self._audit("trust", None, {"subjects": n, "ratings": len(triples), "rings": len(rings)})
        return {
            "subjects": n,
            "ratings": len(triples),
            "iterations": result.iterations,
            "residual": result.residual,
            "pretrusted": len(seeds),
            "trust": [{"subject": subjects[i], "relative_trust": float(relative[i])} for i in order],
            "rings": [{"members": [subjects[m] for m in ring.members], "density": ring.density, "inside": ring.inside,
                       "outside": ring.outside, "mean_trust": ring.mean_trust, "evidence": ring.evidence()}
                      for ring in rings],
            "recorded": recorded,
        }

    def _derived_event(self, subject: str, event_type: str, at_us: int, key: str, attributes: dict) -> ValidEvent:
        """An event the registry itself reports (provider `socialcredit`), about a pseudonym."""
        attributes = self.policy.validate_event(event_type, attributes, "person")
        return ValidEvent(None, subject, "person", event_type, at_us, "socialcredit", key, attributes,
                          attributes_json(attributes))

    def _ratings_spec(self):
        if self.policy.ratings is None:
            raise RegistryError(f"the {self.policy.id} policy has no ratings (try the nosedive or peeple pack)")
        return self.policy.ratings

    def _one(self, event: dict) -> dict:
        result = self.ingest([event])
        if result.errors:
            raise RegistryError(result.errors[0]["error"])
        seq = result.ledger_size - 1 if result.accepted else None
        return {"accepted": result.accepted, "duplicate": bool(result.duplicates), "entry": seq,
                "ledger_size": result.ledger_size, "root": result.root}

    def materialized(self, subject: str) -> dict | None:
        """The stored (compact) standing of a pseudonym, as written at ingest: `core(fold(...))`."""
        row = self.store.standing_row(subject)
        return None if row is None else json.loads(row[5])

    # -- decisions -----------------------------------------------------------------------------

    def check(self, ref: str, service: str, *, kind: str = "person", at: str | int | None = None) -> Decision:
        """May this subject use this service at `at` (default now)? Logged, replayable."""
        subject = self.pseudonym(ref, kind)
        return self.check_subject(subject, service, _instant(at))

    def check_subject(self, subject: str, service: str, at_us: int) -> Decision:
        if time.monotonic() - self._synced > self.freshness_s:
            self._sync()
        # The policy in force at `at`: nearly always the newest, so look no further then.
        newest_since, policy = self._policies[-1][1], self._policies[-1][2]
        if at_us < newest_since:
            policy = self.policy_at(at_us)
        cached = self._cache.get(subject)
        if cached is None or not cached.covers(at_us, policy.digest):
            cached = self._load_cached(subject, at_us, policy)
        allowed, effect, applied, reasons = decide(policy, cached.measures, service)
        self._decision_counter += 1
        decision_id = f"d-{self._decision_prefix}-{self._decision_counter:08x}"  # ordered: the log grows at its end
        self._decisions.append(
            (decision_id, subject, service, at_us, policy.digest, self._size, allowed, effect,
             ",".join(a[0] for a in applied), 0, self.principal)
        )
        if len(self._decisions) >= _DECISION_BUFFER or time.monotonic() - self._decisions_since > _DECISION_MAX_AGE_S:
            self.flush()
        return Decision(
            decision_id, subject, service, format_instant(at_us), allowed, effect,
            [measure_dict(policy, mid, until) for mid, until, _ in applied] if applied else [],
            [reason_dict(policy, r) for r in reasons] if reasons else [],
            policy.ref(), self._size, cached.score, cached.tier,
        )

    def _load_cached(self, subject: str, at_us: int, policy: Policy) -> _Cached:
        row = self.store.standing_row(subject)
        if row is not None:
            _digest, known_size, _from, _until, cacheable, body = row
            if known_size > self._size:
                # Written by another process after this one last looked: catch up first, so
                # the decision logs a ledger size that holds everything it was based on.
                self._catch_up(self.store.size())
                if policy.digest != self.policy.digest:
                    policy = self.policy_at(at_us)
            cached = _Cached(json.loads(body), bool(cacheable))
            if cached.covers(at_us, policy.digest):
                self._cache[subject] = cached
                return cached
        standing = fold(policy, self.store.entries_for_subject(subject), at_us, self._size, subject)
        cached = _Cached(core(standing), standing.cacheable)
        if cached.cacheable and policy is self.policy:
            self._cache[subject] = cached
        return cached

    def flush(self) -> None:
        """Write buffered decision records (checks buffer up to 10,000 or one second of them)."""
        if self._decisions:
            recorded = now_us()
            rows = [row[:9] + (recorded,) + row[10:] for row in self._decisions]
            self._decisions = []
            self.store.log_decisions(rows)
        self._decisions_since = time.monotonic()

    def _sync(self) -> None:
        """Notice entries appended by other processes and drop the standings they touch."""
        self._synced = time.monotonic()
        self._catch_up(self.store.size())

    def _catch_up(self, size: int) -> bool:
        """Bring this process's caches up to ledger size `size`; True if the policy changed."""
        if size == self._size:
            return False
        known = self._policies[-1][2].digest if self._policies else None
        self._load_policies()
        policy_changed = (self._policies[-1][2].digest if self._policies else None) != known
        touched = self.store.subjects_since(self._size)
        if policy_changed:
            self._cache.clear()
        else:
            for subject in touched:
                self._cache.pop(subject, None)
        self._history.forget(touched)
        self._size = size
        return policy_changed

    def replay(self, decision_id: str) -> dict:
        """Recompute a logged decision from the ledger as it was; it must come out the same."""
        self.flush()
        row = self.store.decision(decision_id)
        if row is None:
            raise RegistryError(f"no decision {decision_id!r} in this registry")
        policy = self._policy_by_digest.get(row.policy_digest)
        if policy is None:
            self._sync()  # activated by another process since this one last looked?
            policy = self._policy_by_digest.get(row.policy_digest)
        if policy is None:
            raise RegistryError(f"decision {decision_id} names a policy this ledger does not hold")
        entries = self.store.entries_for_subject(row.subject)
        standing = fold(policy, entries, row.at_us, row.ledger_size, row.subject)
        active = {mid: (until, reasons) for mid, until, reasons in core(standing)["measures"]}
        allowed, effect, applied, reasons = decide(policy, active, row.service)
        logged = {"allowed": bool(row.allowed), "effect": row.effect,
                  "measures": [m for m in row.measures.split(",") if m]}
        replayed = {"allowed": allowed, "effect": effect, "measures": [a[0] for a in applied]}
        self._audit("replay", row.subject, {"decision_id": decision_id})
        return {
            "decision_id": decision_id,
            "service": row.service,
            "at": format_instant(row.at_us),
            "ledger_size": row.ledger_size,
            "policy": policy.ref(),
            "logged": logged,
            "replayed": replayed,
            "reasons": [reason_dict(policy, r) for r in reasons],
            "same": logged == replayed,
        }

    # -- tamper evidence -----------------------------------------------------------------------

    def size(self) -> int:
        return self.store.size()

    def root(self) -> dict:
        checkpoint = self.store.last_checkpoint()
        if checkpoint is None:
            return {"size": 0, "root": merkle.EMPTY_ROOT.hex()}
        return {"size": checkpoint.size, "root": checkpoint.root.hex()}

    def inclusion_proof(self, seq: int, size: int | None = None) -> dict:
        size = self._check_known_at(size) or self.store.size()
        if not 0 <= seq < size:
            raise RegistryError(f"entry #{seq} is not in a ledger of size {size}")
        leaves = self._leaves(size)
        return {
            "seq": seq,
            "size": size,
            "leaf_hash": leaves[seq].hex(),
            "root": merkle.root(leaves).hex(),
            "proof": [h.hex() for h in merkle.inclusion_proof(leaves, seq)],
        }

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> dict:
        new_size = self._check_known_at(new_size) or self.store.size()
        if not 0 <= old_size <= new_size:
            raise RegistryError(f"old size {old_size} must be between 0 and {new_size}")
        leaves = self._leaves(new_size)
        return {
            "old_size": old_size,
            "new_size": new_size,
            "old_root": merkle.root(leaves[:old_size]).hex(),
            "new_root": merkle.root(leaves).hex(),
            "proof": [h.hex() for h in merkle.consistency_proof(leaves, old_size)],
        }

    def _leaves(self, size: int) -> list[bytes]:
        leaves = self.store.leaf_hashes(size)
        if len(leaves) != size:
            raise RegistryError(f"the ledger holds {len(leaves)} entries below size {size}: entries are missing; "
                                "run `socialcredit verify`")
        return leaves

    def verify(self, progress: Callable[[int], None] | None = None) -> VerifyReport:
        """Recompute every leaf and every checkpoint root from the stored entries."""
        from .ledger.verify import verify_ledger

        return verify_ledger(self.store, progress)

    # -- helpers -------------------------------------------------------------------------------

    def _check_known_at(self, known_at: int | None) -> int | None:
        if known_at is None:
            return None
        size = self.store.size()
        if not 0 < known_at <= size:
            raise RegistryError(f"known-at size must be between 1 and the ledger size {size}, got {known_at}")
        return known_at

    def _audit(self, action: str, subject: str | None, detail: dict) -> None:
        self.store.log_audit([(now_us(), self.principal, action, subject, canonical_json(detail))])

    def audit(self, ref: str | None = None, *, kind: str = "person", limit: int = 100) -> dict:
        """The audit log, newest first (only reads about `ref` if given); this read is logged too."""
        if limit < 1:
            raise RegistryError(f"limit must be at least 1, got {limit}")
        subject = None if ref is None else self.pseudonym(ref, kind)
        rows = self.store.audit_rows(subject, limit)
        self._audit("audit", subject, {"limit": limit})
        entries = [{"at": format_instant(r.at_us), "principal": r.principal, "action": r.action,
                    "subject": r.subject, "detail": json.loads(r.detail)} for r in rows]
        return {"subject": subject, "entries": entries}


@contextmanager
def _no_cyclic_gc():
    """Pause the cyclic garbage collector during bulk work.

    Ingest makes millions of small acyclic objects; the collector would walk them again and
    again (a quarter of the time, measured) and find nothing. Reference counting still frees
    them; the collector runs again afterwards.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _sort_out(valid: list[ValidEvent], existing: dict, result: IngestResult):
    """Split events into new ones, duplicates (counted) and conflicting reuses of a key."""
    fresh: list[ValidEvent] = []
    conflicts: list[dict] = []
    seen: dict[tuple[str, str], ValidEvent] = {}
    for event in valid:
        key = (event.provider, event.key)
        if key in existing:
            seq, body = existing[key]
            if stored_event_content(body) == event.content():
                result.duplicates += 1
            else:
                conflicts.append({"line": event.line, "error": (
                    f"key {event.key!r} of provider {event.provider!r} was already used for a different "
                    f"event (entry #{seq}); a correction is a new event with a new key")})
            continue
        earlier = seen.get(key)
        if earlier is not None:
            if earlier.content() == event.content():
                result.duplicates += 1
            else:
                conflicts.append({"line": event.line, "error": (
                    f"key {event.key!r} of provider {event.provider!r} is already used on line {earlier.line} "
                    "for a different event")})
            continue
        seen[key] = event
        fresh.append(event)
    return fresh, conflicts


def _standing_row(standing: Standing, size: int) -> tuple:
    return (
        standing.subject,
        standing.policy.digest,
        size,
        standing.valid_from_us,
        standing.valid_until_us,
        standing.cacheable,
        float(standing.score),
        standing.tier,
        canonical_json(core(standing)),
    )


def _instant(at: str | int | None) -> int:
    if at is None:
        return now_us()
    if isinstance(at, int):
        return at
    return parse_instant(at, allow_date=True)


__all__ = ["Registry", "RegistryError", "IngestResult", "VerifyReport", "StoreError", "DEFAULT_URL"]
