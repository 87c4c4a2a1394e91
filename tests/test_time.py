"""Instants, durations and calendar periods (in UTC and in a policy's own time zone)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from socialcredit.instants import (Duration, TimeFormatError, format_day, format_instant, parse_instant, period_start,
                                zone_named)

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
