"""The policies a ledger has put in force, in order: which one governs a given time.

An activation is a ledger entry, so "the policy in force at time T, as known at ledger size
N" has one answer. The book reads only the activations (a partial index finds them) and
compiles a policy the first time it is needed, so opening a registry costs the same
whatever the ledger's size. It compiles from the policy's snapshot (policy/snapshot.py), kept
in `meta` when the policy was activated or the standings rebuilt, and validates the text only
when there is none for this text and this code. Shared between threads: the list of
activations is replaced whole, never changed in place.
"""

from __future__ import annotations

import threading

from ..errors import NotFound
from ..policy.compiled import Policy
from ..policy.load import parse_policy
from ..policy.snapshot import from_snapshot, snapshot, taken_by_this_code
from ..store import LedgerTables, PolicyActivation, Store
from ..store.database import Tx


def keep_snapshot(store: Store, tx: Tx, policy: Policy) -> None:
    """Keep the policy's snapshot in `meta` (a derived row, replaced whenever it is taken again)."""
    store.meta.put(tx, _snapshot_name(policy.digest), snapshot(policy))


def snapshot_problems(store: Store) -> list[tuple[int, str]]:
    """(entry, what is wrong) for each kept snapshot that is not what its policy's text gives:
    a snapshot is trusted when a registry opens, so an edited one would change decisions
    while the ledger's text stayed the same. Snapshots taken by other code are not read, so
    they are not checked either."""
    found = []
    for activation in store.ledger.policy_activations():
        kept = store.meta.get(_snapshot_name(activation.digest))
        if kept is None or not taken_by_this_code(kept):
            continue
        policy = parse_policy(activation.body["text"], source=f"ledger entry #{activation.seq}")
        if kept != snapshot(policy):
            found.append((activation.seq, f"the kept snapshot of policy {policy.label} is not what its text gives "
                                          f"(`socialcredit rebuild` takes it again)"))
    return found


def _snapshot_name(digest: str) -> str:
    return f"policy:{digest[:56]}"  # `meta` names are at most 64 characters; the row holds the whole digest


class PolicyBook:
    def __init__(self, store: Store):
        self._ledger: LedgerTables = store.ledger
        self._meta = store.meta
        self._activations: tuple[PolicyActivation, ...] = ()
        self._compiled: dict[str, Policy] = {}
        self._lock = threading.Lock()
        self.refresh()

    def refresh(self) -> bool:
        """Read activations written since the last look (by any process); True if the current one changed."""
        with self._lock:
            known = self._activations
            after = known[-1].seq if known else -1
            new = self._ledger.policy_activations(after)
            if not new:
                return False
            self._activations = known + tuple(new)
            return True

    def remember(self, activation: PolicyActivation, policy: Policy) -> None:
        """An activation this process just wrote (its entry is committed)."""
        with self._lock:
            self._compiled.setdefault(policy.digest, policy)
            if not self._activations or self._activations[-1].seq < activation.seq:
                self._activations = self._activations + (activation,)

    @property
    def empty(self) -> bool:
        return not self._activations

    @property
    def current(self) -> Policy:
        activations = self._activations
        if not activations:
            raise NotFound("this registry has no active policy; run `socialcredit policy activate`")
        return self._policy(activations[-1])

    @property
    def current_since_us(self) -> int:
        """When the policy now in force was activated (checks about later times need look no further)."""
        return self._activations[-1].recorded_us if self._activations else 0

    def current_activation(self) -> PolicyActivation | None:
        return self._activations[-1] if self._activations else None

    def at(self, at_us: int, known_at: int | None = None) -> Policy:
        """The policy in force at `at_us`, among the activations known at ledger size `known_at`.

        Before the first activation, the first policy is taken to apply (events can be older
        than the registry).
        """
        known = [a for a in self._activations if known_at is None or a.seq < known_at]
        if not known:
            raise NotFound("no policy was active at that ledger size")
        in_force = [a for a in known if a.recorded_us <= at_us]
        return self._policy(in_force[-1] if in_force else known[0])

    def by_digest(self, digest: str) -> Policy | None:
        for activation in self._activations:
            if activation.digest == digest:
                return self._policy(activation)
        return None

    def activation_of(self, digest: str) -> PolicyActivation | None:
        for activation in reversed(self._activations):
            if activation.digest == digest:
                return activation
        return None

    def _policy(self, activation: PolicyActivation) -> Policy:
        policy = self._compiled.get(activation.digest)
        if policy is None:
            text, source = activation.body["text"], f"ledger entry #{activation.seq}"
            kept = self._meta.get(_snapshot_name(activation.digest))
            policy = (kept and from_snapshot(kept, text, source)) or parse_policy(text, source=source)
            with self._lock:
                policy = self._compiled.setdefault(activation.digest, policy)
        return policy
