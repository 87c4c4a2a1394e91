"""Idempotency: an event is known by its provider and key.

The same (provider, key) with the same content is a duplicate (counted, not written again);
with different content it is refused, because a correction is a new event with a new key.
"""

from __future__ import annotations

from typing import NamedTuple

from ..errors import excerpt
from ..ledger.entries import stored_event_content
from ..results import IngestProblem
from .validation import ValidEvent


class SortedOut(NamedTuple):
    fresh: list[ValidEvent]
    duplicates: int
    conflicts: list[IngestProblem]


def sort_out(valid: list[ValidEvent], existing: dict[tuple[str, str], tuple[int, str]]) -> SortedOut:
    """Split events into new ones, duplicates (counted) and conflicting reuses of a key.

    `existing` maps the (provider, key) pairs already in the ledger to (seq, stored body).
    """
    fresh: list[ValidEvent] = []
    conflicts: list[IngestProblem] = []
    duplicates = 0
    seen: dict[tuple[str, str], ValidEvent] = {}
    for event in valid:
        key = (event.provider, event.key)
        if key in existing:
            seq, body = existing[key]
            if stored_event_content(body) == event.content():
                duplicates += 1
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
