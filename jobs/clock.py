"""When the daily send is due: pure functions of an instant, the send time and the zone.

The edition date is the date of the scheduled send time in NEWSLETTER_TIMEZONE, never the
date of `now()` (docs/ARCHITECTURE.md, "Scheduling facts"). DST policy, the same everywhere
(daemon, wake-up trigger, `newsletter status`):

- a send time the clocks skip (spring forward, 02:30 in America/New_York) happens once, at
  the first instant after the jump (03:00 local), as cron does;
- a send time the clocks show twice (fall back, 01:30) happens once, at its first
  occurrence (PEP 495 fold=0); the second 01:30 is still the same date's slot.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple
from zoneinfo import ZoneInfo


class Slot(NamedTuple):
    """One scheduled send: the edition's date and the instant it is due, in UTC.

    UTC because PEP 495 makes a wall time in the fold (the first 01:30 of a fall-back night)
    compare unequal to every datetime of another zone, even to itself in UTC.
    """

    date: dt.date
    at: dt.datetime


def slot_on(day: dt.date, send_time: dt.time, zone: ZoneInfo) -> Slot:
    wall = dt.datetime.combine(day, send_time)
    at = wall.replace(tzinfo=zone).astimezone(dt.UTC)
    if _wall(at, zone) != wall:
        at = _end_of_gap(wall, zone)
    return Slot(day, at)


def latest_slot(now: dt.datetime, send_time: dt.time, zone: ZoneInfo) -> Slot:
    """The most recent slot at or before `now`."""
    now = _utc(now)
    today = now.astimezone(zone).date()
    slot = slot_on(today, send_time, zone)
    return slot if slot.at <= now else slot_on(today - dt.timedelta(days=1), send_time, zone)


def next_slot(now: dt.datetime, send_time: dt.time, zone: ZoneInfo) -> Slot:
    """The first slot strictly after `now`."""
    now = _utc(now)
    today = now.astimezone(zone).date()
    slot = slot_on(today, send_time, zone)
    return slot if slot.at > now else slot_on(today + dt.timedelta(days=1), send_time, zone)


def _utc(now: dt.datetime) -> dt.datetime:
    # In UTC instants compare as instants; local times do not (PEP 495: within one tzinfo by
    # wall time, ignoring fold, so the two 01:30s of a fall-back night are equal).
    return now.astimezone(dt.UTC)


def _wall(instant: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _end_of_gap(wall: dt.datetime, zone: ZoneInfo) -> dt.datetime:
    """The first whole second whose local time is at or after `wall`, which the clocks skip.

    zoneinfo exposes no transitions, so bisect between the two readings of the skipped time
    (PEP 495: fold=1 reads it with the offset after the jump, landing before it; fold=0 with
    the offset before, landing after it).
    """
    low = int(wall.replace(tzinfo=zone, fold=1).timestamp())
    high = int(wall.replace(tzinfo=zone, fold=0).timestamp())
    while high - low > 1:
        middle = (low + high) // 2
        if _wall(dt.datetime.fromtimestamp(middle, dt.UTC), zone) >= wall:
            high = middle
        else:
            low = middle
    return dt.datetime.fromtimestamp(high, dt.UTC)
