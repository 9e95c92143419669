"""Is it ready, and did today go out? The checks behind /readyz and `newsletter health`.

Readiness: the database answers and its schema is at the revision this code expects (the
web app never upgrades it: `newsletter db upgrade` is the deploy step). The day's checks,
for a person or a monitoring script: the edition of the latest send time went out (or is
going out), no delivery is of unknown fate, failed + unknown stay under
NEWSLETTER_ALERT_FAILED_PERCENT, no sender's lease has run out unnoticed, and no queued mail
(confirmations, fresh links) has waited more than an hour.

Sits with the delivery floor (it reads the ledger); the faces call it. Core statements on
newsletter.store.tables: a check every minute loads no ORM.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import Connection, Engine, func, select
from sqlalchemy.exc import SQLAlchemyError

from newsletter.delivery import tally
from newsletter.delivery.edition import find_edition
from newsletter.ops.alerts import failed_share_alert
from newsletter.settings import Settings
from newsletter.store import mail_queue
from newsletter.store.db import reader, schema_state
from newsletter.store.leases import lapsed
from newsletter.store.tables import EditionStatus, deliveries, stories

# The daemon checks every 5 minutes by default: give it that and a margin before an edition
# that has not started counts as missed.
START_GRACE = dt.timedelta(minutes=15)
QUEUE_MAX_AGE = dt.timedelta(hours=1)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def readiness(engine: Engine) -> list[Check]:
    """The database answers, and its schema is the one this code expects."""
    try:
        with reader(engine).connect() as conn:  # no write lock on SQLite: answers mid-send
            schema = schema_state(conn)
    except SQLAlchemyError as err:
        reason = str(getattr(err, "orig", err)).strip().splitlines()[0]
        return [Check("database", False, f"cannot reach the database: {reason}")]
    return [Check("database", True, f"{engine.dialect.name} answers"),
            Check("schema", schema.up_to_date, schema.describe() + (
                "" if schema.up_to_date else "; run `newsletter db upgrade`"))]


def day_checks(engine: Engine, settings: Settings, date: dt.date, send_at: dt.datetime,
               now: dt.datetime) -> list[Check]:
    """The state of edition `date`, whose send time was `send_at` (already past)."""
    with reader(engine).connect() as conn:  # one snapshot, no write lock on SQLite
        checks = [_edition(conn, settings, date, send_at, now),
                  _stuck_leases(conn)]
        checks.append(_mail_queue(conn, now))
    return checks


def _edition(conn: Connection, settings: Settings, date: dt.date, send_at: dt.datetime,
             now: dt.datetime) -> Check:
    edition = find_edition(conn, date)
    if edition is None:
        if now < send_at + START_GRACE:
            return Check("edition", True, f"edition {date}: its send time was {send_at:%H:%M}"
                         " UTC; starting")
        ready = conn.scalar(select(func.count(stories.c.id)).where(stories.c.date == date))
        why = ("no stories were imported for it" if not ready else
               f"{ready} stories are ready: is `newsletter schedule` running?")
        return Check("edition", False, f"edition {date} was not sent: {why}")
    counts = tally.counts(conn, edition.id)
    shown = ", ".join(f"{counts[s]} {s}" for s in tally.STATES if counts[s])
    if counts["unknown"]:
        return Check("edition", False, f"edition {date}: {counts['unknown']} deliveries of "
                     f"unknown fate ({shown}); `newsletter send --date {date} "
                     "--resend-unknown` after checking")
    too_many = failed_share_alert(settings, date.isoformat(), counts)
    if too_many:
        return Check("edition", False, too_many)
    state = "complete" if edition.status == EditionStatus.COMPLETE else "sending"
    return Check("edition", True, f"edition {date} {state}: {shown or 'no subscribers'}")


def _stuck_leases(conn: Connection) -> Check:
    # On the database's clock, as the leases themselves (a host clock running ahead would
    # call a live sender dead).
    stuck = conn.scalar(select(func.count(deliveries.c.id)).where(*lapsed(conn)))
    if stuck:
        return Check("leases", False, f"{stuck} deliveries are held by a sender whose lease "
                     "ran out (it died mid-batch); the next `newsletter send` or daemon check "
                     "turns them unknown")
    return Check("leases", True, "no expired leases")


def _mail_queue(conn: Connection, now: dt.datetime) -> Check:
    """Confirmation and link emails (newsletter.store.mail_queue) waiting over an hour."""
    oldest = mail_queue.oldest_waiting(conn)
    if oldest is None:
        return Check("mail queue", True, "nothing waiting")
    if now - oldest > QUEUE_MAX_AGE:
        return Check("mail queue", False, f"queued mail has waited since {oldest:%H:%M} UTC: "
                     "is `newsletter schedule` or `newsletter outbox drain` running?")
    return Check("mail queue", True, f"oldest queued at {oldest:%H:%M} UTC")


def as_json(checks: list[Check]) -> dict:
    return {"ok": all(c.ok for c in checks), "checks": [asdict(c) for c in checks]}
