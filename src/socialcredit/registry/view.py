"""What this process knows of the ledger: the size it has seen, and caches valid at that size.

Other processes append too. Before a process appends, and now and then before it answers a
check, it catches up: it reads the new size, the new policy activations and which subjects
the new entries touch, and forgets what it cached about them. Caches are shared between
threads; a generation counter keeps a thread that read a stored standing before an append
from caching it after.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

from ..ledger.entries import Entry
from ..scoring.compact import CompactStanding
from ..store import Store
from .policies import PolicyBook

FRESHNESS_S = 0.05  # how stale a check may be about other processes' appends


class HistoryCache:
    """Parsed entries per subject. Entries never change, so a subject's history only grows:
    ingest appends to it instead of reading and parsing it again. Least recently used go first."""

    def __init__(self, capacity: int = 200_000):
        self.capacity = capacity
        self._items: OrderedDict[str, list[Entry]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, subject: str) -> list[Entry] | None:
        with self._lock:
            history = self._items.get(subject)
            if history is not None:
                self._items.move_to_end(subject)
            return history

    def put_all(self, histories: dict[str, list[Entry]]) -> None:
        with self._lock:
            for subject, history in histories.items():
                self._items[subject] = history
                self._items.move_to_end(subject)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)

    def forget(self, subjects: Iterable[str] | None) -> None:
        with self._lock:
            if subjects is None:
                self._items.clear()
            else:
                for subject in subjects:
                    self._items.pop(subject, None)


class LedgerView:
    def __init__(self, store: Store, policies: PolicyBook):
        self._store = store
        self._policies = policies
        self.size = store.ledger.size()
        self.histories = HistoryCache()
        self._standings: dict[str, CompactStanding] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self._synced = time.monotonic()
        self.freshness_s = FRESHNESS_S

    # -- catching up --------------------------------------------------------------------------

    def maybe_sync(self) -> None:
        if time.monotonic() - self._synced > self.freshness_s:
            self.sync()

    def sync(self) -> bool:
        """Notice other processes' appends; True if the policy in force changed."""
        self._synced = time.monotonic()
        return self.catch_up(self._store.ledger.size())

    def catch_up(self, size: int) -> bool:
        """Bring the caches to ledger size `size`; True if the policy in force changed."""
        with self._lock:
            if size <= self.size:
                return False  # already there (another thread got further meanwhile)
            policy_changed = self._policies.refresh()
            touched = self._store.ledger.subjects_since(self.size)
            self._forget(None if policy_changed else touched)
            self.size = size
            return policy_changed

    def appended(self, size: int, histories: dict[str, list[Entry]], others: Iterable[str] = ()) -> None:
        """This process appended up to `size`; `histories` are touched subjects' whole histories,
        `others` the touched subjects whose histories were not read (folded from their state)."""
        with self._lock:
            self._forget([*histories, *others])
            self.histories.put_all(histories)
            self.size = max(self.size, size)

    def appended_many(self, size: int) -> None:
        """This process appended a streamed batch up to `size`: too many subjects to name, so
        every cached history and standing goes."""
        with self._lock:
            self._forget(None)
            self.size = max(self.size, size)

    def policy_changed(self, size: int) -> None:
        with self._lock:
            self._forget(None)
            self.size = size

    def _forget(self, subjects: Iterable[str] | None) -> None:
        self._generation += 1
        if subjects is None:
            self._standings.clear()
            self.histories.forget(None)
            return
        subjects = list(subjects)
        for subject in subjects:
            self._standings.pop(subject, None)
        self.histories.forget(subjects)

    # -- standings for checks -----------------------------------------------------------------

    @property
    def generation(self) -> int:
        return self._generation

    def lookup(self, subject: str) -> tuple[int, CompactStanding | None, int]:
        """(ledger size, cached standing or None, generation), read together.

        A cached standing holds at the size read with it: an append that touches the subject
        forgets it and moves the size under the same lock.
        """
        with self._lock:
            return self.size, self._standings.get(subject), self._generation

    def cache_standing(self, subject: str, standing: CompactStanding, generation: int) -> None:
        """Keep a standing read or folded at `generation`, unless an append has happened since."""
        with self._lock:
            if generation == self._generation:
                self._standings[subject] = standing
