"""Standings: materialized at ingest, rebuilt on demand, read (audited) and explained.

The stored standing of a subject is the compact form of the reference fold, computed by the
engine when its entries are appended; `rebuild` throws them all away and computes them
again. A read (standing, explanation) folds the subject's entries afresh, so it can answer
for any time and any ledger size; a check uses the stored standing while it still holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from ..errors import InvalidInput
from ..instants import format_instant, now_us
from ..ledger.entries import Entry
from ..policy.compiled import Policy
from ..results import Explanation, Rebuilt, StandingReport
from ..scoring.compact import CompactStanding, compact, stored_fields
from ..scoring.engine import Engine
from ..scoring.explain import explain_entries, rating_view, standing_parts
from ..scoring.fold import Standing
from ..store import StandingRow, Store, Tx
from ..store.database import Waiter
from .audit import AuditTrail
from .caller import Caller
from .policies import PolicyBook, keep_snapshot
from .view import LedgerView

_REBUILD_CHUNK = 2_000


def standing_row(subject: str, standing: CompactStanding, size: int) -> StandingRow:
    return StandingRow(subject, standing.policy_digest, size, *stored_fields(standing))


class Standings:
    def __init__(self, store: Store, policies: PolicyBook, view: LedgerView, engine: Engine, audit: AuditTrail):
        self._store = store
        self._policies = policies
        self._view = view
        self._audit = audit
        self.engine = engine

    # -- materialized -------------------------------------------------------------------------

    def materialize(self, tx: Tx, policy: Policy, histories: Iterable[tuple[str, list[Entry]]], size: int,
                    as_of_us: int) -> None:
        """Store the compact standing of each (subject, whole history), as of `as_of_us`."""
        rows = [standing_row(subject, standing, size)
                for subject, standing in self.engine.compact_standings(policy, histories, as_of_us)]
        self._store.standings.put(tx, rows)

    def rebuild(self, *, engine: Engine | None = None, progress: Callable[[int], None] | None = None,
                on_wait: Waiter | None = None) -> Rebuilt:
        """Throw away every materialized standing and compute them again from the ledger."""
        engine = engine or self.engine
        policy = self._policies.current
        fallback: dict[str, int] = {}
        with self._store.db.write(append=True, on_wait=on_wait) as tx:
            self._store.standings.clear(tx)
            self._store.fold_states.clear(tx)  # derived too: the next append folds each subject whole once
            keep_snapshot(self._store, tx, policy)  # derived too (a registry from before snapshots gets one)
            subjects = sorted(self._store.ledger.subjects(tx))
            size = self._store.ledger.size(tx)
            as_of = now_us()
            if getattr(engine, "reads_export", False):  # Spark: the ledger goes to it as Parquet
                self._rebuild_from_export(tx, engine, policy, size, as_of, progress)
            else:
                for start in range(0, len(subjects), _REBUILD_CHUNK):
                    chunk = subjects[start : start + _REBUILD_CHUNK]
                    histories = self._store.ledger.entries_for_subjects(chunk, tx)
                    rows = [standing_row(subject, standing, size) for subject, standing in
                            engine.compact_standings(policy, ((s, histories.get(s, [])) for s in chunk), as_of)]
                    self._store.standings.put(tx, rows)
                    last = getattr(engine, "last", None)  # a columnar engine's batch: what it folded one by one
                    if last is not None:
                        for reason, count in last.fallback_reasons.items():
                            fallback[reason] = fallback.get(reason, 0) + count
                    if progress is not None:
                        progress(len(chunk))
        self._view.policy_changed(size)
        if getattr(engine, "reads_export", False):  # its executors' fallbacks are not gathered: not a count of 0
            return Rebuilt(len(subjects), engine.name, None, {})
        return Rebuilt(len(subjects), engine.name, sum(fallback.values()), dict(sorted(fallback.items())))

    def _rebuild_from_export(self, tx: Tx, engine, policy: Policy, size: int, as_of: int, progress) -> None:
        """The ledger up to `size` exported to a scratch folder (or read over JDBC), scored by the engine."""
        import tempfile
        from pathlib import Path

        from .export import jdbc_url, write_export

        with tempfile.TemporaryDirectory(prefix="socialcredit-rebuild-") as scratch:
            if getattr(engine, "source", "export") == "jdbc":  # read by Spark from PostgreSQL itself
                url, properties = jdbc_url(self._store.db.url)
                standings = engine.compact_standings_of_database(policy, url, properties, size, as_of)
            else:
                write_export(self._store, Path(scratch) / "export")
                standings = engine.compact_standings_of_export(policy, Path(scratch) / "export", as_of)
            rows = []
            for subject, standing in standings:
                rows.append(standing_row(subject, standing, size))
                if len(rows) >= _REBUILD_CHUNK:
                    self._store.standings.put(tx, rows)
                    if progress is not None:
                        progress(len(rows))
                    rows = []
            self._store.standings.put(tx, rows)
            if progress is not None:
                progress(len(rows))

    def materialized(self, subject: str) -> CompactStanding | None:
        """The stored standing of a pseudonym, as written at ingest (or rebuild)."""
        row = self._store.standings.get(subject)
        return None if row is None else CompactStanding.from_json(row.body, row.cacheable)

    # -- for checks ---------------------------------------------------------------------------

    def for_check(self, subject: str, at_us: int, policy: Policy, size: int,
                  generation: int) -> tuple[CompactStanding, Policy, int]:
        """The compact standing a check at `at_us` needs, the policy it is under, and the ledger
        size it holds at (the size the decision logs, so that a replay there recomputes it).

        `size` and `generation` are what this process's view said before looking. First the
        stored standing (written when the subject's last entry was appended, so it holds at its
        `known_size`), else a fresh fold of the entries below `size`. A stored standing newer
        than the view means another process appended: catch up, so later checks see it too.
        """
        row = self._store.standings.get(subject)
        if row is not None:
            if row.known_size > size:
                self._view.catch_up(self._store.ledger.size())
                policy = self._policies.at(at_us)
            stored = CompactStanding.from_json(row.body, row.cacheable)
            if stored.covers(at_us, policy.digest):
                self._view.cache_standing(subject, stored, generation)
                return stored, policy, row.known_size
        folded = compact(self.engine.standing(policy, self._store.ledger.entries_for_subject(subject), at_us, size,
                                              subject))
        if folded.cacheable and policy is self._policies.current:
            self._view.cache_standing(subject, folded, generation)
        return folded, policy, size

    # -- reads --------------------------------------------------------------------------------

    def fold(self, subject: str, at_us: int, known_at: int | None = None) -> tuple[Standing, int]:
        """The reference standing of a pseudonym from the ledger, and the ledger size it saw."""
        with self._store.db.read() as tx:
            size = self._store.ledger.size(tx)
            if known_at is not None and not 0 < known_at <= size:
                raise InvalidInput(f"known-at size must be between 1 and the ledger size {size}, got {known_at}")
            entries = self._store.ledger.entries_for_subject(subject, tx)
        policy = self._policies.at(at_us, known_at)
        return self.engine.standing(policy, entries, at_us, known_at, subject), known_at or size

    def report(self, subject: str, at_us: int, known_at: int | None, caller: Caller) -> StandingReport:
        standing, size = self.fold(subject, at_us, known_at)
        self._audit.record(caller, "standing", subject, {"at": format_instant(at_us), "known_at": known_at})
        policy = standing.policy
        ratings = [rating_view(policy, r) for r in standing.ratings] if policy.ratings is not None else None
        return StandingReport(**standing_parts(policy, compact(standing), standing.reasons), subject=subject,
                              at=format_instant(at_us), known_at=size, entries=len(standing.events), ratings=ratings)

    def explanation(self, subject: str, at_us: int, caller: Caller) -> Explanation:
        standing, size = self.fold(subject, at_us)
        self._audit.record(caller, "explain", subject, {"at": format_instant(at_us)})
        return Explanation(**standing_parts(standing.policy, compact(standing), standing.reasons), subject=subject,
                           at=format_instant(at_us), known_at=size, entries=explain_entries(standing))
