"""Instants, durations and calendar periods (in UTC and in a policy's own time zone)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from socialcredit.instants import (EARLIEST_US, END_US, LATEST_US, Duration, TimeFormatError, TimeOutOfRange,
                                   format_day, format_instant, parse_instant, parse_stored_instant, period_start,
                                   to_us, zone_named)

SHANGHAI = zone_named("Asia/Shanghai")
NEW_YORK = zone_named("America/New_York")


def test_rfc3339_round_trip_and_offsets():
    assert format_instant(parse_instant("2026-03-01T08:00:00+08:00")) == "2026-03-01T00:00:00Z"
    assert format_instant(parse_instant("2026-03-01T00:00:00.250Z")) == "2026-03-01T00:00:00.250000Z"
    with pytest.raises(TimeFormatError, match="no time zone offset"):
        parse_instant("2026-03-01T08:00:00")
    with pytest.raises(TimeFormatError, match="not an RFC 3339 time"):
        parse_instant("March 1st")


def test_durations_use_the_calendar_for_years_and_months():
    assert Duration.parse("P1M").after(parse_instant("2026-01-31T12:00:00Z")) == parse_instant("2026-02-28T12:00:00Z")
    assert Duration.parse("P2Y").after(parse_instant("2024-02-29T00:00:00Z")) == parse_instant("2026-02-28T00:00:00Z")
    assert Duration.parse("PT48H").after(parse_instant("2026-03-01T00:00:00Z")) == parse_instant("2026-03-03T00:00:00Z")
    assert Duration.parse("P1Y2M3D").words() == "1 year 2 months 3 days"
    with pytest.raises(TimeFormatError):
        Duration.parse("2 years")


def test_periods_in_a_time_zone():
    instant = parse_instant("2026-03-01T00:30:00+08:00")
    assert period_start(instant, "P1M") == parse_instant("2026-02-01T00:00:00Z")
    assert period_start(instant, "P1M", SHANGHAI) == parse_instant("2026-03-01T00:00:00+08:00")
    assert period_start(instant, "P1D", SHANGHAI) == parse_instant("2026-03-01T00:00:00+08:00")
    assert period_start(instant, "P1W", SHANGHAI) == parse_instant("2026-02-23T00:00:00+08:00")  # a Monday
    assert period_start(instant, "P1Y", SHANGHAI) == parse_instant("2026-01-01T00:00:00+08:00")
    assert format_day(instant) == "2026-02-28" and format_day(instant, SHANGHAI) == "2026-03-01"
    with pytest.raises(TimeFormatError, match="not a known time zone"):
        zone_named("Mars/Olympus")


@given(st.integers(0, 4_000_000_000 * 1_000_000), st.sampled_from(["P1D", "P1W", "P1M", "P1Y"]),
       st.sampled_from([None, SHANGHAI, NEW_YORK]))
def test_a_period_starts_at_or_before_the_instant_and_is_stable_inside(instant, period, zone):
    start = period_start(instant, period, zone)
    assert start <= instant
    assert period_start(start, period, zone) == start
    assert period_start(start - 1, period, zone) < start  # the microsecond before is the previous period


# -- the accepted range, and round trips inside it ------------------------------------------------

CANONICAL = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z"


@pytest.mark.parametrize("text", [
    "0999-01-01T00:00:00Z",            # the year a dropped digit makes of 1999
    "1899-12-31T23:59:59.999999Z",
    "1900-01-01T00:30:00+01:00",       # 1899 in UTC
    "2201-01-01T00:00:00Z",
    "2200-12-31T23:30:00-01:00",       # 2201 in UTC
    "9999-12-31T23:59:59Z",
])
def test_a_time_outside_the_years_1900_to_2200_is_refused_saying_why(text):
    with pytest.raises(TimeOutOfRange) as refused:
        parse_instant(text)
    assert str(refused.value) == (f"{text!r} is outside the accepted range: times must fall in the years 1900 to "
                                  "2200 (UTC)")
    assert isinstance(refused.value, TimeFormatError)  # every handler of a bad time handles it


def test_a_date_outside_the_range_is_refused_too():
    with pytest.raises(TimeOutOfRange, match="'1899-12-31' is outside the accepted range"):
        parse_instant("1899-12-31", allow_date=True)
    assert parse_instant("1900-01-01", allow_date=True) == EARLIEST_US


def test_the_edges_of_the_range_are_accepted():
    assert parse_instant("1900-01-01T00:00:00Z") == EARLIEST_US
    assert parse_instant("2200-12-31T23:59:59.999999Z") == END_US - 1
    assert format_instant(EARLIEST_US) == "1900-01-01T00:00:00Z"
    assert format_instant(END_US - 1) == "2200-12-31T23:59:59.999999Z"


def test_years_before_1000_are_written_with_four_digits():
    # Outside the accepted range, but what the ledger once stored must still read back.
    instant = to_us(datetime(999, 1, 1, tzinfo=timezone.utc))
    assert format_instant(instant) == "0999-01-01T00:00:00Z"
    assert parse_stored_instant(format_instant(instant)) == instant
    assert format_day(instant) == "0999-01-01"


@given(st.integers(EARLIEST_US, END_US - 1))
def test_every_accepted_instant_round_trips_through_its_canonical_text(instant):
    text = format_instant(instant)
    assert re.fullmatch(CANONICAL, text), text
    assert parse_instant(text) == instant


@given(st.datetimes(min_value=datetime(1900, 1, 2), max_value=datetime(2200, 12, 30)),
       st.integers(-(23 * 60 + 59), 23 * 60 + 59))
def test_a_time_with_any_offset_means_the_instant_it_names(local, offset_minutes):
    # The day's margin at each end keeps every offset inside the range.
    moment = local.replace(tzinfo=timezone(timedelta(minutes=offset_minutes)))
    instant = parse_instant(moment.isoformat())
    assert instant == to_us(moment)
    assert parse_instant(format_instant(instant)) == instant


@given(st.integers(EARLIEST_US, END_US - 1),
       st.builds(lambda y, m, d, h: f"P{y}Y{m}M{d}DT{h}H", st.integers(0, 10**6), st.integers(0, 10**4),
                 st.integers(0, 10**8), st.integers(0, 10**6)))
def test_any_duration_after_an_accepted_instant_is_a_writable_date(instant, text):
    later = Duration.parse(text).after(instant)
    assert instant <= later <= LATEST_US
    assert re.fullmatch(CANONICAL, format_instant(later))
    for zone in (None, SHANGHAI, NEW_YORK, zone_named("Pacific/Kiritimati")):
        format_day(later, zone)


def test_a_duration_that_would_pass_year_9999_stops_at_the_latest_instant():
    edge = parse_instant("2200-12-31T12:00:00Z")
    assert Duration.parse("P8000Y").after(edge) == LATEST_US
    assert Duration.parse("P3000000D").after(edge) == LATEST_US
    assert Duration.parse("P1M").after(LATEST_US) == LATEST_US  # extending "forever" again
    assert Duration.parse("P1Y").after(edge) == parse_stored_instant("2201-12-31T12:00:00Z")  # no clamp needed


@pytest.mark.parametrize("text", ["P١D", "P１D", "PT" + "9" * 13 + "S", "P" + "9" * 5000 + "D"])
def test_a_duration_is_written_in_ascii_digits_of_reasonable_length(text):
    # int() read Arabic-Indic digits as 1, and raised ValueError (a traceback) past 4,300 digits.
    with pytest.raises(TimeFormatError, match="is not an ISO 8601 duration"):
        Duration.parse(text)
    assert Duration.parse("PT" + "9" * 12 + "S").micros == 999_999_999_999_000_000


HOUR_US = 3_600_000_000


@pytest.mark.parametrize("text, instant", [
    # RFC 3339 allows lower case; fromisoformat does not
    ("2026-03-01t08:00:00z", to_us(datetime(2026, 3, 1, 8, tzinfo=timezone.utc))),
    ("2026-03-01T08:00:00.5-01:30", to_us(datetime(2026, 3, 1, 9, 30, 0, 500_000, tzinfo=timezone.utc))),
    # in UTC the year 0, which no datetime holds: the offset is plain arithmetic, not an OverflowError
    ("0001-01-01T00:00:00+01:00", to_us(datetime(1, 1, 1, tzinfo=timezone.utc)) - HOUR_US),
])
def test_a_stored_time_is_read_to_the_instant_it_names(text, instant):
    assert parse_stored_instant(text) == instant


ZONES = ["Asia/Shanghai", "Europe/Berlin", "America/Santiago", "Australia/Lord_Howe", "America/St_Johns", "UTC"]


@settings(max_examples=300, deadline=None)
@given(st.integers(parse_instant("1900-01-02T00:00:00Z"), parse_instant("2199-12-30T00:00:00Z")),
       st.sampled_from(ZONES))
def test_the_cached_offset_is_the_zones_offset_at_every_instant(instant, name):
    from datetime import datetime

    from socialcredit.instants import _utc_offset_us, zone_named

    zone = zone_named(name)
    if name == "UTC":
        return
    exact = datetime.fromtimestamp(instant // 1_000_000, zone).utcoffset() // timedelta(microseconds=1)
    assert _utc_offset_us(instant, zone) == exact


@settings(max_examples=300, deadline=None)
@given(st.integers(parse_instant("1901-01-02T00:00:00Z"), parse_instant("2199-12-30T00:00:00Z")),
       st.sampled_from(["P1D", "P1W", "P1M", "P1Y"]), st.sampled_from(ZONES[:5]))
def test_a_local_period_starts_at_the_local_midnight_that_opens_it(instant, period, name):
    from datetime import datetime

    from socialcredit.instants import to_us, zone_named

    zone = zone_named(name)
    local = datetime.fromtimestamp(instant / 1_000_000, zone)
    day = local.date()
    first = {"P1D": day, "P1W": day - timedelta(days=day.weekday()), "P1M": day.replace(day=1),
             "P1Y": day.replace(month=1, day=1)}[period]
    start = period_start(instant, period, zone)
    assert datetime.fromtimestamp(start / 1_000_000, zone).date() == first
    assert start <= instant
    # The period's first instant: a moment earlier is in the period before it.
    assert datetime.fromtimestamp((start - 1) / 1_000_000, zone).date() < first
