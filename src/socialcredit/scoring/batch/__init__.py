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
from array import array
from collections.abc import Iterable, Iterator

import numpy as np

from ...ledger.entries import EVENT, VOID
from ...policy.compiled import Policy
from ..compact import CompactStanding
from ..fold import Standing, fold
from .kernel import NONE, BatchResult, score_columns

__all__ = ["BatchEngine", "BatchResult", "ColumnBuilder", "NONE", "columnarize", "score_columns", "subset"]


def matched_attributes(policy: Policy) -> list[str]:
    """The attribute names the policy's rules match on: the only attributes the kernel reads."""
    names: list[str] = []
    for rule in policy.rules:
        for name, _allowed in rule.match:
            if name not in names:
                names.append(name)
    return names


class ColumnBuilder:
    """The kernel's columns grown an entry at a time, 8 bytes a value (a million events take
    tens of MB, where lists of Python ints would take hundreds): what `columnarize` and a
    streamed ingest (registry/ingest.py) build the kernel's input with.

    Subjects get codes in the order they are first named; rows are kept in the order added
    (`columns()` returns them as they are; `subset` sorts a selection by subject).
    """

    def __init__(self, policy: Policy, keep_entries: bool = False):
        self.names = matched_attributes(policy)
        self.subjects: list[str] = []
        self._codes: dict[str, int] = {}
        self.subject, self.seq, self.target = array("q"), array("q"), array("q")
        self.type, self.occurred, self.kind = array("q"), array("q"), array("b")
        self._type_index: dict[str, int] = {}
        self._attribute_codes = {name: array("q") for name in self.names}
        self._attribute_values: dict[str, dict] = {name: {} for name in self.names}
        self.entries: list | None = [] if keep_entries else None

    def __len__(self) -> int:
        return len(self.seq)

    def subject_code(self, pseudonym: str) -> int:
        code = self._codes.get(pseudonym)
        if code is None:
            code = self._codes[pseudonym] = len(self.subjects)
            self.subjects.append(pseudonym)
        return code

    def new_subject(self, pseudonym: str) -> int:
        """A code for a subject not named before (a history of its own, as `columnarize` is given)."""
        self.subjects.append(pseudonym)
        return len(self.subjects) - 1

    def add_event(self, code: int, seq: int, event_type: str, occurred_us: int, attributes: dict,
                  entry=None) -> None:
        type_code = self._type_index.get(event_type)
        if type_code is None:
            type_code = self._type_index[event_type] = len(self._type_index)
        self.subject.append(code)
        self.seq.append(seq)
        self.kind.append(0)
        self.target.append(-1)
        self.type.append(type_code)
        self.occurred.append(occurred_us)
        for name in self.names:
            value = attributes.get(name)
            if value is None:
                self._attribute_codes[name].append(-1)
            else:
                seen = self._attribute_values[name]
                self._attribute_codes[name].append(seen.setdefault(value, len(seen)))
        if self.entries is not None:
            self.entries.append(entry)

    def add_void(self, code: int, seq: int, target: int, entry=None) -> None:
        self.subject.append(code)
        self.seq.append(seq)
        self.kind.append(1)
        self.target.append(target)
        self.type.append(-1)
        self.occurred.append(0)
        for name in self.names:
            self._attribute_codes[name].append(-1)
        if self.entries is not None:
            self.entries.append(entry)

    def columns(self) -> dict:
        """The kernel's columns (NumPy views of the arrays: add nothing while they are in use)."""
        def view(values: array, dtype) -> np.ndarray:
            return np.frombuffer(values, dtype=dtype) if len(values) else np.zeros(0, dtype=dtype)

        return {
            "subjects": self.subjects,
            "subject": view(self.subject, np.int64),
            "seq": view(self.seq, np.int64),
            "kind": view(self.kind, np.int8),
            "target": view(self.target, np.int64),
            "type": view(self.type, np.int64),
            "type_names": list(self._type_index),
            "occurred_us": view(self.occurred, np.int64),
            "attributes": {name: (view(self._attribute_codes[name], np.int64), list(self._attribute_values[name]))
                           for name in self.names},
            "entry": self.entries,
        }


def subset(columns: dict, rows: np.ndarray) -> dict:
    """The columns of the given rows, sorted by subject (stably: each subject's rows keep their
    order), the subjects they name coded afresh from 0 in the order of their old codes."""
    order = rows[np.argsort(columns["subject"][rows], kind="stable")]
    codes, subject = np.unique(columns["subject"][order], return_inverse=True)
    subjects = columns["subjects"]
    part = {"subjects": [subjects[c] for c in codes.tolist()], "subject": subject.astype(np.int64),
            "type_names": columns["type_names"],
            "attributes": {name: (codes_[order], values) for name, (codes_, values) in columns["attributes"].items()}}
    for name in ("seq", "kind", "target", "type", "occurred_us"):
        part[name] = columns[name][order]
    entries = columns.get("entry")
    part["entry"] = None if entries is None else [entries[i] for i in order.tolist()]
    return part


def columnarize(policy: Policy, histories: Iterable[tuple[str, list]]) -> dict:
    """Plain histories (subject, entries in seq order) to the kernel's columns."""
    builder = ColumnBuilder(policy, keep_entries=True)
    for pseudonym, history in histories:
        code = builder.new_subject(pseudonym)
        for entry in history:
            if entry.kind == EVENT:
                builder.add_event(code, entry.seq, entry.type, entry.occurred_us, entry.attributes, entry)
            elif entry.kind == VOID:
                builder.add_void(code, entry.seq, entry.target, entry)
    return builder.columns()


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
