"""The incremental fold: a subject's fold state, kept from one batch to the next, so that a new
batch folds only its new events.

    state = build(policy, entries)                   the whole history, once
    state = advance(policy, state, new_events)       a later batch: only its events
    standing = standing_at(policy, state, at_us)     == fold(policy, entries, at_us)

What the state keeps is what the fold computes from the events before it looks at `at`: the
list stays (entered, left, extended, with their terms), the open stay of each (list, case),
each record a rule made of an event (the rule, when it happened, until when it counts or that
it counts while a listing lasts, or that a cap refused it) and the cap counters per calendar
period. Evaluating at `at` (what counts, decay, sums, effects, reasons, measures and when they
lift, the interval the standing holds in) is then `fold.standing_from`, the fold's own code.

It holds only where the fold's order is kept and nothing old changes (`can_advance`):

- the policy has no rating dimensions and no "latest value" dimensions (those read the events
  themselves when evaluated: nosedive, peeple): `supports` is False and the caller folds;
- every new entry is an event (a void cancels an old one: fold the history again);
- a new event that occurred before the state's horizon (the latest occurred_at folded) is
  taken only where its place in the fold's order changes nothing else: it enters, leaves
  or extends no list (later list stays would change), and every cap it meets still has
  room in its period once it and the batch's other early events count (else a later
  record would be refused in its stead); its records go in at their place in that order;
- nothing folded lies after `at` (the fold leaves events in the future out).

Otherwise the caller folds the whole history again (`build`), and counts it. Property tests
(tests/test_incremental.py) hold `standing_at(advance(...))` equal to the fold for random
histories split into random batches, for every pack.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

import orjson

from ..instants import period_start
from ..ledger.entries import EVENT, VOID, Entry
from ..policy.compiled import Policy, matches
from .compact import body_json
from .fold import (Contribution, Spell, Standing, _ChangePoints, contribution_at, list_step, listing_until,
                   standing_from)

LIFETIME, CAPPED, LISTING = 0, 1, 2  # how a record's end is known


@dataclass(slots=True)
class FoldState:
    policy_digest: str
    horizon: int | None  # the latest occurred_at folded; None: nothing yet
    spells: list[Spell]
    open_by_case: dict[tuple[str, str], Spell]
    records: list[tuple[int, str, int, int | None, int]]  # (seq, rule, occurred, until, how), in fold order
    counted: dict[tuple[str, int], int]  # (rule, period start) -> records counted in that period

    def to_json(self) -> str:
        return body_json(self.stored_form())

    def stored_form(self) -> dict:
        """The value `to_json` writes (tuples in it are written as arrays)."""
        index = {id(s): n for n, s in enumerate(self.spells)}
        return {
            "policy": self.policy_digest,
            "horizon": self.horizon,
            "spells": [[s.list_id, s.case, s.seq, s.since_us, s.until_us, s.trigger, s.left_seq, s.extended, s.cap_us,
                        s.refused_exits, [list(x) for x in s.extensions]] for s in self.spells],
            "open": [[slot[0], slot[1], index[id(s)]] for slot, s in self.open_by_case.items()],
            "records": self.records,
            "counted": [[rule, start, n] for (rule, start), n in self.counted.items()],
        }

    @classmethod
    def from_json(cls, text: str) -> "FoldState":
        data = orjson.loads(text)
        spells = [Spell(list_id, case, seq, since, until, trigger, left, extended, cap, refused,
                        [tuple(x) for x in extensions])
                  for list_id, case, seq, since, until, trigger, left, extended, cap, refused, extensions
                  in data["spells"]]
        return cls(data["policy"], data["horizon"], spells,
                   {(list_id, case): spells[n] for list_id, case, n in data["open"]},
                   [tuple(r) for r in data["records"]],
                   {(rule, start): n for rule, start, n in data["counted"]})


def supports(policy: Policy) -> bool:
    """Whether the policy's standings can be folded incrementally (see the module's notes)."""
    return not policy.rating_dimensions and not policy.latest_dimensions


def empty(policy: Policy) -> FoldState:
    return FoldState(policy.digest, None, [], {}, [], {})


def build(policy: Policy, entries: Sequence[Entry]) -> FoldState:
    """The state of a whole history: the fold's events (voided ones left out), in its order."""
    voided = {e.target for e in entries if e.kind == VOID}
    events = sorted((e for e in entries if e.kind == EVENT and e.seq not in voided),
                    key=lambda e: (e.occurred_us, e.seq))
    return advance(policy, empty(policy), events)


def can_advance(policy: Policy, state: FoldState, new_entries: Sequence[Entry], at_us: int) -> bool:
    """Whether `advance(state, new_entries)` then `standing_at(at_us)` is the fold's standing."""
    if state.policy_digest != policy.digest or not supports(policy):
        return False
    horizon = state.horizon
    latest = horizon
    early: dict[tuple[str, int], int] = {}  # (rule, period) -> early events it would count
    for entry in new_entries:
        if entry.kind != EVENT:
            return False
        if horizon is not None and entry.occurred_us < horizon and not _fits_early(policy, state, entry, early):
            return False
        if latest is None or entry.occurred_us > latest:
            latest = entry.occurred_us
    return latest is None or latest <= at_us


def _fits_early(policy: Policy, state: FoldState, event: Entry, early: dict[tuple[str, int], int]) -> bool:
    """Whether an event before the horizon can go in at its place (see the module's notes);
    counts it in `early`, the cap periods the batch's early events fill."""
    if policy.list_triggers_by_event.get(event.type):
        return False
    for rule in policy.rules_by_event.get(event.type, ()):
        if rule.cap_count is None or (rule.match and not matches(rule.match, event.attributes)):
            continue
        period = (rule.id, period_start(event.occurred_us, rule.cap_period, policy.zone))
        early[period] = early.get(period, 0) + 1
        if state.counted.get(period, 0) + early[period] > rule.cap_count:
            return False
    return True


def advance(policy: Policy, state: FoldState, new_events: Sequence[Entry]) -> FoldState:
    """Fold `new_events` (events only, seqs after the state's, any before the horizon as
    `can_advance` allows) into `state`, in place; returns it."""
    counted, zone = state.counted, policy.zone
    for event in sorted(new_events, key=lambda e: (e.occurred_us, e.seq)):
        occurred = event.occurred_us
        if state.horizon is not None and occurred < state.horizon:
            # its records go after every record of an event no later than it: the fold's
            # (occurred, seq) order, its seq being the latest yet
            at = bisect_right(state.records, occurred, key=_occurred)
            records = []
        else:
            at, records = None, state.records
            list_step(policy, event, state.spells, state.open_by_case)
        for rule in policy.rules_by_event.get(event.type, ()):
            if rule.match and not matches(rule.match, event.attributes):
                continue
            if rule.cap_count is not None:
                period = (rule.id, period_start(occurred, rule.cap_period, zone))
                seen = counted.get(period, 0)
                if seen >= rule.cap_count:
                    records.append((event.seq, rule.id, occurred, None, CAPPED))
                    continue
                counted[period] = seen + 1
            if rule.lifetime is not None:
                records.append((event.seq, rule.id, occurred, rule.lifetime.after(occurred), LIFETIME))
            else:
                records.append((event.seq, rule.id, occurred, None, LISTING))
        if at is not None:
            state.records[at:at] = records
        elif state.horizon is None or occurred > state.horizon:
            state.horizon = occurred
    return state


def _occurred(record: tuple) -> int:
    return record[2]


def standing_at(policy: Policy, state: FoldState, at_us: int, subject: str | None = None) -> Standing:
    """The standing the state gives at `at_us` (no later than its horizon): the fold's, but
    for what only the events themselves hold (`Standing.events`, `voided`, `cancelled` are
    empty: an explanation folds the history)."""
    if state.horizon is not None and state.horizon > at_us:
        raise ValueError("the state holds events after the instant asked about: fold the history")
    clock = _ChangePoints(at_us)
    if state.horizon is not None:
        clock.add(state.horizon)  # every event folded is a change point; all are <= at: the latest counts
    spells = state.spells
    for spell in spells:
        clock.add(spell.since_us)
        if spell.until_us is not None:
            clock.add(spell.until_us)
    spell_by_seq = {(s.list_id, s.seq): s for s in spells}
    rules = policy.rules_by_id
    contributions = []
    for seq, rule_id, occurred, until, how in state.records:
        rule = rules[rule_id]
        if how == CAPPED:
            contributions.append(Contribution(seq, rule, occurred, occurred, "capped", 0.0))
            continue
        if how == LISTING:
            until = listing_until(rule, seq, occurred, spell_by_seq)
        contributions.append(contribution_at(rule, seq, occurred, until, at_us, clock))
    return standing_from(policy, subject, at_us, None, [], {}, [], spells, contributions, clock)
