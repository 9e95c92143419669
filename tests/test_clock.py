"""jobs.clock: which slot is due at an instant, on ordinary and DST days (pure functions)."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from jobs.clock import Slot, latest_slot, next_slot, slot_on

NY = ZoneInfo("America/New_York")
UTC = dt.UTC
SPRING, FALL = dt.date(2024, 3, 10), dt.date(2024, 11, 3)  # New York's 2024 DST days


def utc(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=UTC)


def test_an_ordinary_day_is_due_from_its_send_time_on():
    six = dt.time(6, 0)
    day = dt.date(2024, 6, 12)
    at = utc(2024, 6, 12, 10, 0)  # 06:00 EDT
    assert slot_on(day, six, NY) == Slot(day, at)
    assert latest_slot(at - dt.timedelta(seconds=1), six, NY).date == day - dt.timedelta(days=1)
    assert latest_slot(at, six, NY) == Slot(day, at)
    assert next_slot(at, six, NY).date == day + dt.timedelta(days=1)
    assert next_slot(at - dt.timedelta(seconds=1), six, NY) == Slot(day, at)


def test_the_date_is_the_send_times_date_in_the_zone_not_utcs():
    # 23:30 in New York is already tomorrow in UTC.
    slot = latest_slot(utc(2024, 6, 13, 3, 45), dt.time(23, 30), NY)
    assert slot == Slot(dt.date(2024, 6, 12), utc(2024, 6, 13, 3, 30))


def test_a_skipped_send_time_happens_once_right_after_the_jump():
    slot = slot_on(SPRING, dt.time(2, 30), NY)
    assert slot.at == utc(2024, 3, 10, 7, 0)  # 03:00 EDT, the first instant after 01:59:59 EST
    assert slot.at.astimezone(NY).strftime("%H:%M %Z") == "03:00 EDT"
    assert latest_slot(utc(2024, 3, 10, 6, 59, 59), dt.time(2, 30), NY).date == SPRING - \
        dt.timedelta(days=1)
    assert latest_slot(utc(2024, 3, 10, 7, 0), dt.time(2, 30), NY) == slot


def test_a_repeated_send_time_happens_once_at_its_first_occurrence():
    first = utc(2024, 11, 3, 5, 30)   # 01:30 EDT
    second = utc(2024, 11, 3, 6, 30)  # 01:30 EST, the same wall time an hour later
    slot = slot_on(FALL, dt.time(1, 30), NY)
    assert slot == Slot(FALL, first)
    assert latest_slot(second, dt.time(1, 30), NY) == slot  # not a new slot
    assert next_slot(first, dt.time(1, 30), NY).date == FALL + dt.timedelta(days=1)


def test_times_given_in_the_zone_itself_compare_as_instants():
    # Same-tzinfo datetimes compare by wall time; the second 01:30 must still be "after".
    second = dt.datetime(2024, 11, 3, 1, 30, fold=1, tzinfo=NY)
    assert next_slot(second, dt.time(1, 30), NY).date == FALL + dt.timedelta(days=1)


@pytest.mark.parametrize("day", [SPRING, FALL])
@pytest.mark.parametrize("send_time", [dt.time(1, 30), dt.time(2, 30), dt.time(6, 0)])
def test_every_minute_of_a_dst_weekend_sees_exactly_one_slot_per_date(day, send_time):
    start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(12), tzinfo=NY)
    minutes = (start.astimezone(UTC) + dt.timedelta(minutes=m) for m in range(48 * 60))
    seen = {latest_slot(now, send_time, NY) for now in minutes}
    assert sorted(s.date for s in seen) == [day + dt.timedelta(days=n) for n in (-1, 0, 1)]
    today = next(s for s in seen if s.date == day)
    assert today.at.astimezone(NY).date() == day
    assert next_slot(today.at - dt.timedelta(microseconds=1), send_time, NY) == today
