"""Instants and durations.

Instants are integers: microseconds since the Unix epoch, UTC. Integers keep the fold exact
(no float drift between engines) and cheap to compare. Durations are ISO 8601 (`P2Y`,
`P180D`, `PT24H`); years and months are calendar units, so adding them goes through a
calendar date (2024-02-29 + P1Y = 2025-02-28), the rest is plain arithmetic.

Accepted text: RFC 3339 to the letter (`2026-03-01T08:00:00.5+08:00`): ASCII digits, a calendar
date, seconds, at most 6 fractional digits, an offset of hours and minutes. What else ISO 8601
or Python's fromisoformat would read (week dates, `20260301T0800`, offsets with seconds,
nanoseconds cut to microseconds unsaid) is refused, saying what it looks like.

Accepted range: a time given to the registry (an event's `occurred_at`, an `--at`) must fall
in the years 1900 to 2200, UTC (`EARLIEST_US` <= t < `END_US`); `parse_instant` refuses any
other, saying so. Inside that range every instant round-trips: `format_instant` writes the
canonical text (`2026-03-01T00:00:00Z`, microseconds when there are any) and
`parse_instant` reads it back to the same integer. A duration added to an instant never
leaves what a date can hold: the sum stops at `LATEST_US` (9999-01-01), later than any
accepted time, so "forever and a day" compares as it should and is still written as a date.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import lru_cache
from datetime import date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import InvalidInput, excerpt

US_PER_SECOND = 1_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_EPOCH_DATE = date(1970, 1, 1)


class TimeFormatError(InvalidInput):
    """A time or duration that is not acceptable; the message says what was expected."""


class TimeOutOfRange(TimeFormatError):
    """A well-formed time outside what the registry accepts (before 1900, after 2200, in the future)."""


FIRST_YEAR = 1900
LAST_YEAR = 2200
_RANGE_WORDS = f"times must fall in the years {FIRST_YEAR} to {LAST_YEAR} (UTC)"


def now_us() -> int:
    return time.time_ns() // 1000


def parse_instant(text: str, *, allow_date: bool = False) -> int:
    """RFC 3339 (`2026-03-01T08:00:00+08:00`, `...Z`) to epoch microseconds, years 1900 to 2200.

    A time zone offset is required: a bare local time would mean different instants on
    different machines. With `allow_date`, `2026-03-01` means midnight UTC. A time outside
    the accepted range raises TimeOutOfRange (a TimeFormatError).
    """
    instant = parse_stored_instant(text, allow_date=allow_date)
    if not EARLIEST_US <= instant < END_US:
        raise TimeOutOfRange(f"{excerpt(text.strip())} is outside the accepted range: {_RANGE_WORDS}")
    return instant


def accepted_instant(instant_us: int) -> int:
    """`instant_us` itself if it lies in the accepted range (a time given as a number), else TimeOutOfRange."""
    if instant_us.__class__ is not int:
        raise TimeFormatError(f"expected a time as whole microseconds since 1970, got {excerpt(instant_us)}")
    if not EARLIEST_US <= instant_us < END_US:
        raise TimeOutOfRange(f"{excerpt(instant_us)} microseconds since 1970 is outside the accepted range: "
                             f"{_RANGE_WORDS}")
    return instant_us


# RFC 3339's date-time, to the letter: ASCII digits only (`re.ASCII`: Python's \d takes any
# script's), a calendar date (no week or ordinal dates), seconds always, at most 6 fractional
# digits (the registry keeps microseconds, and would otherwise drop the rest unsaid), and an
# offset of hours and minutes. Python's fromisoformat takes all of those and more.
_RFC3339 = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt](\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?(?:[Zz]|([+-])(\d\d):(\d\d))", re.ASCII)
_DATE = re.compile(r"(\d{4})-(\d\d)-(\d\d)", re.ASCII)
# What a time that RFC 3339 refuses most likely meant, to say so rather than only "no".
_NEAR_MISSES = tuple((re.compile(shape, re.ASCII | re.DOTALL), words) for shape, words in (
    (r"\d{4}-\d\d-\d\d[Tt]\d\d:\d\d:\d\d(?:\.\d+)?", "has no time zone offset (add Z or +08:00)"),
    (r".*[.,]\d{7,}.*", "has more than 6 fractional digits (the registry keeps microseconds)"),
    (r".*[Tt].*[+-]\d\d:?\d\d:\d\d.*", "has an offset with seconds (an offset is ±HH:MM)"),
    (r"\d{4}-?[Ww]\d.*", "is an ISO week date (give a calendar date, YYYY-MM-DD)"),
))
_EXPECTED = "expected e.g. 2026-03-01T08:00:00Z"


def parse_stored_instant(text: str, *, allow_date: bool = False) -> int:
    """`parse_instant` without the accepted range: for times the ledger already holds.

    Entries written before the range was enforced must still be read and verified.
    """
    if text.__class__ is not str:
        raise TimeFormatError(f"expected an RFC 3339 time string, got {excerpt(text)}")
    candidate = text.strip()
    if allow_date and len(candidate) == 10:
        day = _DATE.fullmatch(candidate)
        if day is None:
            raise TimeFormatError(f"{excerpt(text)} is not a date (expected YYYY-MM-DD)")
        return _instant(text, int(day[1]), int(day[2]), int(day[3]))
    match = _RFC3339.fullmatch(candidate)
    if match is None:
        cause = next((words for shape, words in _NEAR_MISSES if shape.fullmatch(candidate)), None)
        raise TimeFormatError(f"{excerpt(text)} {cause}" if cause else
                              f"{excerpt(text)} is not an RFC 3339 time ({_EXPECTED})")
    # The shape is RFC 3339's, so an offset is the last 6 characters, ±HH:MM.
    if candidate[-1] not in "Zz" and (candidate[-5:-3] > "23" or candidate[-2:] > "59"):
        raise TimeFormatError(f"{excerpt(text)} has an offset beyond ±23:59")  # fromisoformat takes -00:60
    try:
        return to_us(datetime.fromisoformat(candidate))  # in C: the fast way to the instant
    except ValueError:  # a lower-case t or z, which it does not read, or no such day or time
        pass
    year, month, day, hour, minute, second, fraction, sign, offset_hours, offset_minutes = match.groups()
    offset = 0
    if sign is not None:
        offset = (int(offset_hours) * 60 + int(offset_minutes)) * (-1 if sign == "-" else 1)
    micros = int(fraction.ljust(6, "0")) if fraction else 0
    return _instant(text, int(year), int(month), int(day), int(hour), int(minute), int(second), micros, offset)


def _instant(text: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0,
             micros: int = 0, offset_minutes: int = 0) -> int:
    try:
        moment = datetime(year, month, day, hour, minute, second, micros, tzinfo=timezone.utc)
    except ValueError as exc:  # month 13, 31 February, hour 24, a leap second, year 0
        raise TimeFormatError(f"{excerpt(text)} is not a real date and time ({exc})") from None
    # The offset as plain arithmetic: datetime cannot hold 0001-01-01T00:00+01:00 in UTC.
    return to_us(moment) - offset_minutes * 60 * US_PER_SECOND


_ONE_US = timedelta(microseconds=1)


def to_us(moment: datetime) -> int:
    return (moment - _EPOCH) // _ONE_US


def from_us(instant: int) -> datetime:
    return _EPOCH + timedelta(microseconds=instant)


_US_PER_DAY = 86_400 * US_PER_SECOND
EARLIEST_US = to_us(datetime(FIRST_YEAR, 1, 1, tzinfo=timezone.utc))
END_US = to_us(datetime(LAST_YEAR + 1, 1, 1, tzinfo=timezone.utc))  # the first instant after the range
# Where a sum of durations stops. datetime ends with 9999; a year short of that leaves room
# for any time zone's offset when the date is written in a policy's own zone.
LATEST_US = to_us(datetime(9999, 1, 1, tzinfo=timezone.utc))
_LATEST_DAY = LATEST_US // _US_PER_DAY


def format_instant(instant: int) -> str:
    """Epoch microseconds to canonical RFC 3339 UTC (`2026-03-01T00:00:00Z`).

    Hot: every ledger entry and every reason goes through it, so the date part is cached
    and the time of day is plain arithmetic.
    """
    day, rest = divmod(instant, _US_PER_DAY)
    seconds, micros = divmod(rest, US_PER_SECOND)
    if micros:
        return f"{_date_of_day(day)}T{_time_of_day(seconds)}.{micros:06d}Z"
    return f"{_date_of_day(day)}T{_time_of_day(seconds)}Z"


def format_day(instant: int, zone: tzinfo | None = None) -> str:
    """The calendar date of an instant, in `zone` (UTC when none is given)."""
    if zone is None or zone is timezone.utc:
        return _date_of_day(instant // _US_PER_DAY)
    return datetime.fromtimestamp(instant / US_PER_SECOND, zone).strftime("%Y-%m-%d")


def zone_named(name: str) -> tzinfo:
    """An IANA time zone (`Asia/Shanghai`), or UTC; raises TimeFormatError for an unknown name."""
    if name.upper() == "UTC":
        return timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise TimeFormatError(f"{excerpt(name)} is not a known time zone (e.g. UTC, Asia/Shanghai)") from None


@lru_cache(maxsize=86_400)
def _time_of_day(seconds: int) -> str:
    hours, seconds = divmod(seconds, 3_600)
    minutes, seconds = divmod(seconds, 60)
    return f"{hours:02d}:{minutes:02d}:{seconds:02d}"


@lru_cache(maxsize=65_536)
def _date_of_day(day: int) -> str:
    # Not strftime("%Y"): glibc writes year 999 as "999", which no RFC 3339 parser reads back.
    moment = _EPOCH_DATE + timedelta(days=day)
    return f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}"


# ASCII digits only, at most 12 to a number: 999,999,999,999 seconds is 31,000 years, and
# int() of a longer one is where Python stops (4,300 digits) with a traceback.
_DURATION = re.compile(
    r"^P(?!$)(?:(?P<years>\d{1,12})Y)?(?:(?P<months>\d{1,12})M)?(?:(?P<weeks>\d{1,12})W)?(?:(?P<days>\d{1,12})D)?"
    r"(?:T(?=\d)(?:(?P<hours>\d{1,12})H)?(?:(?P<minutes>\d{1,12})M)?(?:(?P<seconds>\d{1,12})S)?)?$",
    re.ASCII,
)


@dataclass(frozen=True, slots=True)
class Duration:
    """An ISO 8601 duration split into calendar months and exact microseconds.

    Calendar months are added on a calendar: UTC's, or with `in_zone` a policy's own, so that
    a two-year record from 1 March 2026 in Shanghai counts until 1 March 2028 in Shanghai
    (on UTC's calendar it would end on 29 February, 16:00 UTC being already 1 March there).
    """

    text: str
    months: int
    micros: int
    zone: tzinfo | None = None  # the calendar months are counted on (None: UTC)

    @classmethod
    def parse(cls, text: str) -> "Duration":
        match = _DURATION.match(text.strip().upper()) if isinstance(text, str) else None
        if not match:
            raise TimeFormatError(f"{excerpt(text)} is not an ISO 8601 duration (expected e.g. P2Y, P180D, PT24H)")
        part = {name: int(value or 0) for name, value in match.groupdict().items()}
        months = part["years"] * 12 + part["months"]
        seconds = (
            (part["weeks"] * 7 + part["days"]) * 86_400
            + part["hours"] * 3_600
            + part["minutes"] * 60
            + part["seconds"]
        )
        return cls(text.strip().upper(), months, seconds * US_PER_SECOND)

    def after(self, instant: int) -> int:
        """The instant this duration after `instant` (calendar months clamp to month end).

        At most `LATEST_US`: a policy may say P1000Y, or extend a listing again and again,
        and the result must still be a date.
        """
        if self.months:
            # Months move the date only; the (local) time of day rides along unchanged.
            if self.zone is None or self.zone is timezone.utc:
                day, time_of_day = divmod(instant, _US_PER_DAY)
                instant = _shift_day(day, self.months) * _US_PER_DAY + time_of_day
            else:
                local = instant + _utc_offset_us(instant, self.zone)
                day, time_of_day = divmod(local, _US_PER_DAY)
                instant = _local_to_utc(_shift_day(day, self.months) * _US_PER_DAY + time_of_day, self.zone)
        return min(instant + self.micros, LATEST_US)

    def in_zone(self, zone: tzinfo) -> "Duration":
        """The same duration, its calendar months counted on `zone`'s calendar."""
        return Duration(self.text, self.months, self.micros, None if zone is timezone.utc else zone)

    def approx_micros(self) -> int:
        """Length in microseconds with 30.44-day months, for comparisons and decay rates only."""
        return self.months * 2_629_746 * US_PER_SECOND + self.micros

    def words(self) -> str:
        """`P2Y` → `2 years`, for explanations."""
        years, months = divmod(self.months, 12)
        days, rest = divmod(self.micros // US_PER_SECOND, 86_400)
        hours = rest // 3_600
        parts = [
            _plural(years, "year"),
            _plural(months, "month"),
            _plural(days, "day"),
            _plural(hours, "hour"),
        ]
        return " ".join(p for p in parts if p) or "no time"

    def __str__(self) -> str:
        return self.text


def _plural(count: int, unit: str) -> str:
    if not count:
        return ""
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


@lru_cache(maxsize=65_536)
def _shift_day(day: int, months: int) -> int:
    """Days since the epoch, `months` calendar months later (31 Jan + 1 month = 28/29 Feb)."""
    if day >= _LATEST_DAY:
        return _LATEST_DAY
    moment = _EPOCH_DATE + timedelta(days=day)
    total = moment.year * 12 + (moment.month - 1) + months
    year, month = divmod(total, 12)
    if year >= 9999:
        return _LATEST_DAY
    month += 1
    shifted = moment.replace(year=year, month=month, day=min(moment.day, _days_in_month(year, month)))
    return (shifted - _EPOCH_DATE).days


def _days_in_month(year: int, month: int) -> int:
    if month == 12:
        return 31
    return (date(year, month + 1, 1) - date(year, month, 1)).days


def period_start(instant: int, period: str, zone: tzinfo | None = None) -> int:
    """Start of the calendar period (`P1D`, `P1W`, `P1M`, `P1Y`) that holds `instant`, in `zone`.

    Caps count events per calendar period because "at most 2 a month" is what a resident
    can check on a calendar; a rolling window is not. The calendar is the policy's own
    (Rongcheng's month starts at midnight in China, not in Greenwich).
    """
    if zone is None or zone is timezone.utc:
        return _period_start_of_day(instant // _US_PER_DAY, period)
    # The period on the local calendar: its first local midnight, named back in UTC.
    local_day = (instant + _utc_offset_us(instant, zone)) // _US_PER_DAY
    return _local_to_utc(_period_start_of_day(local_day, period), zone)


def _utc_offset_us(instant: int, zone: tzinfo) -> int:
    """The zone's offset from UTC at an instant (hot: every lifetime, cap and date in a
    non-UTC policy asks). A zone's offset changes at most once in a UTC day, so what a day
    holds is looked up once and cached."""
    before, change_at, after = _offsets_of_day(instant // _US_PER_DAY, zone)
    return before if change_at is None or instant < change_at else after


@lru_cache(maxsize=262_144)
def _offsets_of_day(day: int, zone: tzinfo) -> tuple[int, int | None, int]:
    """(offset at the day's start, the instant it changes or None, offset after the change)."""
    start = day * _US_PER_DAY
    first, last = _offset_at(start, zone), _offset_at(start + _US_PER_DAY - US_PER_SECOND, zone)
    if first == last:
        return first, None, first
    low, high = 0, 86_399  # seconds into the day: the offset is `first` at low, `last` at high
    while high - low > 1:
        middle = (low + high) // 2
        if _offset_at(start + middle * US_PER_SECOND, zone) == first:
            low = middle
        else:
            high = middle
    return first, start + high * US_PER_SECOND, last


def _offset_at(instant: int, zone: tzinfo) -> int:
    offset = datetime.fromtimestamp(instant // US_PER_SECOND, zone).utcoffset()
    return offset // _ONE_US


def _local_to_utc(local_us: int, zone: tzinfo) -> int:
    """The instant a local wall time names: the offset in force then (in a gap or an overlap
    at a clock change, the offset of the instant one offset-length earlier decides)."""
    return local_us - _utc_offset_us(local_us - _utc_offset_us(local_us, zone), zone)


@lru_cache(maxsize=65_536)
def _period_start_of_day(day: int, period: str) -> int:
    moment = from_us(day * _US_PER_DAY)
    if period == "P1D":
        start = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    elif period == "P1W":
        start = (moment - timedelta(days=moment.weekday())).replace(
            hour=0, minute=0, second=0, microsecond=0
        )
    elif period == "P1M":
        start = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif period == "P1Y":
        start = moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    else:  # validated by the policy schema
        raise TimeFormatError(f"{period!r} is not a calendar period (P1D, P1W, P1M or P1Y)")
    return to_us(start)


CALENDAR_PERIODS = ("P1D", "P1W", "P1M", "P1Y")
