"""The columnar batch engine: many subjects' standings at once, from the ledger as columns.

    score_columns(policy, columns, at_us, known_at=None, workers=1) -> BatchResult
    columnarize(policy, histories) -> columns          (plain entries, as the fold takes them)
    BatchEngine().compact_standings(policy, histories, at_us)   the Engine seam (engine.py)

The kernel's input contract (a Spark engine calls `score_columns` once per group of subjects,
from Arrow columns; every array has one element per ledger row):

    subjects      sequence of n subject pseudonyms; results come back in this order, one per
                  subject, including subjects with no rows (they get the policy's base standing)
    subject       int64, index into `subjects`; rows SORTED by subject, then by seq
    seq           int64, the entry's position in the ledger (globally unique)
    kind          int8, 0 for an event, 1 for a void (other entry kinds are not passed)
    target        int64, a void's target seq (anything for an event, e.g. -1)
    type          int64, index into `type_names` (anything for a void, e.g. -1)
    type_names    sequence of event type names (an Arrow dictionary's values)
    occurred_us   int64, the event's occurred_at in epoch microseconds (anything for a void)
    attributes    {name: (codes, values)} for each attribute a rule's `match` reads: codes int64
                  per row, index into `values` (a sequence of the distinct Python values), -1 where
                  the event lacks it; an attribute no event carries may be left out
    entry         optional: the Entry of each row (object array or list), for the subjects the
                  kernel folds one by one; without it they are rebuilt from `attributes_json`
                  (str per row: the event's attributes as JSON) and `derived_json` (str or None:
                  a rating's derived weight), which a caller that may hit such subjects passes

Rating stars and weights are read, like list cases, from the entries of the subjects the kernel
folds one by one (see below).

The result (BatchResult, kernel.py) holds per-subject columns: score, tier, dimensions,
validity interval, cacheable, each measure's activity, end and reasons, and the standing's
reasons (as rows into the contribution columns); `result.compact(i)` and `result.standings()`
turn them into CompactStanding objects equal to compact(fold(...)). A batch of more than
200,000 rows is scored in pieces of about 1M rows (in `workers` threads) and comes back as a
PiecedResult: the same per-subject columns and methods, the contribution columns left in
`result.pieces`.

The subjects it does not vectorize are folded one by one, and counted:
`result.fallback_subjects` and `result.fallback_reasons` (a Counter of why: "list spells" for
a subject with an event that enters, leaves or extends a list or a rule counting until a
listing ends; "ratings" for one with a rating, dispute or reply under a policy with rating
dimensions; "latest-value dimension"). Nothing falls back silently: `rebuild --json` reports
the count and the reasons.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

import numpy as np

from ...ledger.entries import EVENT, VOID
from ...policy.compiled import Policy
from ..compact import CompactStanding
from ..fold import Standing, fold
from .kernel import NONE, BatchResult, score_columns

__all__ = ["BatchEngine", "BatchResult", "NONE", "columnarize", "score_columns"]


def matched_attributes(policy: Policy) -> list[str]:
    """The attribute names the policy's rules match on: the only attributes the kernel reads."""
    names: list[str] = []
    for rule in policy.rules:
        for name, _allowed in rule.match:
            if name not in names:
                names.append(name)
    return names


def columnarize(policy: Policy, histories: Iterable[tuple[str, list]]) -> dict:
    """Plain histories (subject, entries in seq order) to the kernel's columns."""
    subjects: list[str] = []
    subject, seq, kind, target, type_code, occurred, entries = [], [], [], [], [], [], []
    type_index: dict[str, int] = {}
    names = matched_attributes(policy)
    attribute_codes: dict[str, list[int]] = {name: [] for name in names}
    attribute_values: dict[str, dict] = {name: {} for name in names}
    for i, (pseudonym, history) in enumerate(histories):
        subjects.append(pseudonym)
        for entry in history:
            if entry.kind == EVENT:
                kind.append(0)
                target.append(-1)
                code = type_index.get(entry.type)
                if code is None:
                    code = type_index[entry.type] = len(type_index)
                type_code.append(code)
                occurred.append(entry.occurred_us)
                found = entry.attributes
                for name in names:
                    value = found.get(name)
                    if value is None:
                        attribute_codes[name].append(-1)
                    else:
                        seen = attribute_values[name]
                        attribute_codes[name].append(seen.setdefault(value, len(seen)))
            elif entry.kind == VOID:
                kind.append(1)
                target.append(entry.target)
                type_code.append(-1)
                occurred.append(0)
                for name in names:
                    attribute_codes[name].append(-1)
            else:
                continue
            subject.append(i)
            seq.append(entry.seq)
            entries.append(entry)
    return {
        "subjects": subjects,
        "subject": np.array(subject, dtype=np.int64),
        "seq": np.array(seq, dtype=np.int64),
        "kind": np.array(kind, dtype=np.int8),
        "target": np.array(target, dtype=np.int64),
        "type": np.array(type_code, dtype=np.int64),
        "type_names": list(type_index),
        "occurred_us": np.array(occurred, dtype=np.int64),
        "attributes": {name: (np.array(attribute_codes[name], dtype=np.int64), list(attribute_values[name]))
                       for name in names},
        "entry": entries,
    }


class BatchEngine:
    """Columnar: every subject of a batch scored at once by the NumPy kernel (held equal to the fold)."""

    name = "batch"

    def __init__(self, workers: int | None = None):
        self.workers = workers or min(os.cpu_count() or 1, 8)  # threads for a large batch
        self.last: BatchResult | None = None  # the last batch's result (its fallback counter)

    def standing(self, policy: Policy, entries, at_us: int, known_at: int | None = None,
                 subject: str | None = None) -> Standing:
        # One subject in full (with its explanation's parts) is the fold's job.
        return fold(policy, list(entries), at_us, known_at, subject)

    def compact_standings(self, policy: Policy, histories, at_us: int) -> Iterator[tuple[str, CompactStanding]]:
        result = score_columns(policy, columnarize(policy, histories), at_us, workers=self.workers)
        self.last = result
        return result.standings()
