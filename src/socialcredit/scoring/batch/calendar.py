"""instants.py over arrays: lifetimes and calendar periods for many instants at once, exactly.

Nothing here has its own calendar arithmetic: every answer is instants.py's, computed once per
distinct (UTC or local) day with its cached helpers and spread over the array with NumPy. A
time zone's offset changes at most once in a UTC day (instants._offsets_of_day), so an instant's
offset is its day's offset before the change instant and the day's later offset from it on.
"""

from __future__ import annotations

from datetime import timezone

import numpy as np

from ... import instants
from ...instants import LATEST_US, Duration

DAY = 86_400 * instants.US_PER_SECOND
_NO_CHANGE = np.iinfo(np.int64).max
_TABLE_SPAN = 2_000_000  # days: beyond this span, distinct days are found by sorting instead


def per_day(days: np.ndarray, compute) -> np.ndarray:
    """`compute(day)` (a Python int function) applied to every element of `days`, once per
    distinct day: a lookup table over the span when it is small, np.unique otherwise."""
    if days.size == 0:
        return np.zeros(0, dtype=np.int64)
    low, high = int(days.min()), int(days.max())
    if high - low < _TABLE_SPAN:
        index = days - low
        present = np.zeros(high - low + 1, dtype=bool)
        present[index] = True
        table = np.zeros(high - low + 1, dtype=np.int64)
        for offset in np.flatnonzero(present).tolist():
            table[offset] = compute(low + offset)
        return table[index]
    unique, inverse = np.unique(days, return_inverse=True)
    return np.array([compute(d) for d in unique.tolist()], dtype=np.int64)[inverse]


def _is_utc(zone) -> bool:
    return zone is None or zone is timezone.utc


_RANGE_CHECK = 5_000  # days: a span this short is checked day by day for a single offset


def utc_offsets(instant: np.ndarray, zone):
    """instants._utc_offset_us for each instant: an array, or one int64 for all when the zone
    kept one offset on every day the instants fall on (as Asia/Shanghai has since 1991)."""
    if _is_utc(zone) or instant.size == 0:
        return np.int64(0)
    low, high = int(instant.min()) // DAY, int(instant.max()) // DAY
    if high - low < _RANGE_CHECK:
        parts = [instants._offsets_of_day(day, zone) for day in range(low, high + 1)]
        if all(change is None for _b, change, _a in parts) and len({before for before, _c, _a in parts}) == 1:
            return np.int64(parts[0][0])
        index = instant // DAY - low
        slots = list(range(len(parts)))
    else:
        days = instant // DAY
        table = high - low < _TABLE_SPAN
        if table:
            index = days - low
            present = np.zeros(high - low + 1, dtype=bool)
            present[index] = True
            distinct = (np.flatnonzero(present) + low).tolist()
            slots = [day - low for day in distinct]
            size = high - low + 1
        else:
            unique, index = np.unique(days, return_inverse=True)
            distinct = unique.tolist()
            slots = list(range(len(distinct)))
            size = len(distinct)
        parts = [instants._offsets_of_day(day, zone) for day in distinct]
        parts_by_slot = dict(zip(slots, parts))
        slots = list(parts_by_slot)
        parts = [parts_by_slot[slot] for slot in slots]
    size = max(slots) + 1
    before = np.zeros(size, dtype=np.int64)
    change = np.full(size, _NO_CHANGE, dtype=np.int64)
    after_ = np.zeros(size, dtype=np.int64)
    for slot, (b, c, a) in zip(slots, parts):
        before[slot], after_[slot] = b, a
        if c is not None:
            change[slot] = c
    return np.where(instant < change[index], before[index], after_[index])


def local_to_utc(local: np.ndarray, zone) -> np.ndarray:
    """instants._local_to_utc for each local wall time."""
    if _is_utc(zone):
        return local
    return local - utc_offsets(local - utc_offsets(local, zone), zone)


def after(duration: Duration, instant: np.ndarray) -> np.ndarray:
    """Duration.after for each instant (calendar months on the duration's zone, capped at LATEST_US)."""
    instant = np.asarray(instant, dtype=np.int64)
    if duration.months:
        months = duration.months
        if _is_utc(duration.zone):
            day, time_of_day = np.divmod(instant, DAY)
            instant = per_day(day, lambda d: instants._shift_day(d, months)) * DAY + time_of_day
        else:
            local = instant + utc_offsets(instant, duration.zone)
            day, time_of_day = np.divmod(local, DAY)
            shifted = per_day(day, lambda d: instants._shift_day(d, months)) * DAY + time_of_day
            instant = local_to_utc(shifted, duration.zone)
    return np.minimum(instant + duration.micros, LATEST_US)


def period_starts(instant: np.ndarray, period: str, zone) -> np.ndarray:
    """instants.period_start for each instant."""
    instant = np.asarray(instant, dtype=np.int64)
    if _is_utc(zone):
        return per_day(instant // DAY, lambda d: instants._period_start_of_day(d, period))
    local_day = (instant + utc_offsets(instant, zone)) // DAY
    return per_day(local_day, lambda d: instants._local_to_utc(instants._period_start_of_day(d, period), zone))
