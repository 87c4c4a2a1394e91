"""The engine seam: every computation of standings goes through one interface.

Materialization at ingest, `rebuild`, replay and the ratings intake ask an `Engine` for
standings, never `fold` directly, so that other engines (the columnar batch engine, Spark)
plug in here. `FoldEngine`, the per-subject fold, is the reference: every other engine is
held equal to it by property tests.

    standing(policy, entries, at_us, known_at, subject)   one subject, in full (explanations,
                                                          replays, a rater's weight)
    compact_standings(policy, histories, at_us)           many subjects, compact (what is
                                                          materialized); may be columnar

An engine is given a policy (picklable: it travels to worker processes as its text) and
plain entries; it never touches a database.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Protocol

from ..ledger.entries import Entry
from ..policy.compiled import Policy
from .compact import CompactStanding, compact
from .fold import Standing, fold

History = tuple[str, Sequence[Entry]]  # a subject's pseudonym and all its entries, in seq order


class Engine(Protocol):
    name: str

    def standing(self, policy: Policy, entries: Sequence[Entry], at_us: int, known_at: int | None = None,
                 subject: str | None = None) -> Standing: ...

    def compact_standings(self, policy: Policy, histories: Iterable[History],
                          at_us: int) -> Iterator[tuple[str, CompactStanding]]: ...


class FoldEngine:
    """The reference semantics, one subject at a time, in this process."""

    name = "fold"

    def standing(self, policy: Policy, entries: Sequence[Entry], at_us: int, known_at: int | None = None,
                 subject: str | None = None) -> Standing:
        return fold(policy, list(entries), at_us, known_at, subject)

    def compact_standings(self, policy: Policy, histories: Iterable[History],
                          at_us: int) -> Iterator[tuple[str, CompactStanding]]:
        for subject, entries in histories:
            yield subject, compact(fold(policy, list(entries), at_us, None, subject))


def _batch_engine() -> Engine:
    from .batch import BatchEngine  # NumPy: only where it is asked for

    return BatchEngine()


# Name -> a factory of the engine (imports stay lazy: `socialcredit check` loads no NumPy).
ENGINES: dict[str, Callable[[], Engine]] = {"fold": FoldEngine, "batch": _batch_engine}
_REGISTERED_BY = {"spark": ".spark"}  # engines whose module registers them when first named (lazily: heavy)


def engine_named(name: str) -> Engine:
    from ..errors import InvalidInput

    if name not in ENGINES and name in _REGISTERED_BY:
        import importlib

        importlib.import_module(_REGISTERED_BY[name], __package__)
    try:
        return ENGINES[name]()
    except KeyError:
        raise InvalidInput(f"unknown engine {name!r} (engines: {', '.join(sorted({*ENGINES, *_REGISTERED_BY}))})") from None
