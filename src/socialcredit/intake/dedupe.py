"""Idempotency: an event is known by its provider and key.

The same (provider, key) with the same content is a duplicate (counted, not written again);
with different content it is refused, because a correction is a new event with a new key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

from ..errors import excerpt
from ..ledger.entries import stored_event_content
from ..results import IngestProblem
from .validation import ValidEvent


class SortedOut(NamedTuple):
    fresh: list[ValidEvent]
    duplicates: int
    conflicts: list[IngestProblem]


def sort_out(valid: list[ValidEvent], existing: dict[tuple[str, str], tuple[int, str]],
             batch_lines: Callable[[int], int | None] | None = None) -> SortedOut:
    """Split events into new ones, duplicates (counted) and conflicting reuses of a key.

    `existing` maps the (provider, key) pairs already in the ledger to (seq, stored body).
    `batch_lines`, for a batch streamed in chunks: the line of an entry an earlier chunk of
    the same batch wrote (None for an entry from before the batch), so that a key reused in
    the batch is reported as it is when the batch comes in one piece.
    """
    fresh: list[ValidEvent] = []
    conflicts: list[IngestProblem] = []
    duplicates = 0
    seen: dict[tuple[str, str], ValidEvent] = {}
    for event in valid:
        key = (event.provider, event.key)
        if key in existing:
            seq, body = existing[key]
            line = batch_lines(seq) if batch_lines is not None else None
            if stored_event_content(body) == event.content():
                duplicates += 1
            elif line is not None:
                conflicts.append(IngestProblem(event.line, (
                    f"key {excerpt(event.key)} of provider {excerpt(event.provider)} is already used on line {line} "
                    "for a different event")))
            else:
                conflicts.append(IngestProblem(event.line, (
                    f"key {excerpt(event.key)} of provider {excerpt(event.provider)} was already used for a different "
                    f"event (entry #{seq}); a correction is a new event with a new key")))
            continue
        earlier = seen.get(key)
        if earlier is not None:
            if earlier.content() == event.content():
                duplicates += 1
            else:
                conflicts.append(IngestProblem(event.line, (
                    f"key {excerpt(event.key)} of provider {excerpt(event.provider)} is already used on line {earlier.line} "
                    "for a different event")))
            continue
        seen[key] = event
        fresh.append(event)
    return SortedOut(fresh, duplicates, conflicts)
