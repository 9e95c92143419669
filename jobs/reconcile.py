"""One reconcile pass: is the latest slot's edition due? Then send it, or resume it.

APScheduler only wakes the daemon (docs/ARCHITECTURE.md, "Scheduling facts": its defaults
drop late runs and its job stores must not be shared), so what to do is decided here, from
the clock and the database alone. A missed wake-up, a restart or a second daemon therefore changes
nothing: the edition row for the date is unique and each delivery row is claimed once.

- Starting an edition is limited to NEWSLETTER_CATCHUP_HOURS after its slot: a machine
  that was down at the send time sends when it is back, but not stale news at night.
- A day without stories sends nothing and marks nothing done, so stories that arrive
  later in the window still go out.
- An edition already started is resumed until the next slot, whatever the window: every
  subscriber of a frozen edition gets it, including transient failures retried later.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from jobs.clock import Slot, latest_slot
from newsletter.delivery import tally
from newsletter.delivery.edition import find_edition
from newsletter.delivery.report import SendReport
from newsletter.delivery.run import SendRun
from newsletter.ops.alerts import alert
from newsletter.settings import Settings
from newsletter.store.models import EditionStatus, Story, utcnow

log = logging.getLogger(__name__)


class Reconciler:
    """Call it at any instant; it sends what is due then, and says so once per slot."""

    def __init__(self, settings: Settings, engine: Engine, stop: threading.Event):
        self.settings, self.engine, self.stop = settings, engine, stop
        self.window = dt.timedelta(hours=settings.catchup_hours)
        self._noted: dict[str, dt.date] = {}

    def __call__(self, now: dt.datetime | None = None) -> SendReport | None:
        """One pass at `now`: the report of the send it made, or None."""
        if self.stop.is_set():
            return None
        now = (now or utcnow()).astimezone(dt.UTC)
        slot = latest_slot(now, self.settings.send_time, self.settings.zone)
        action = self._decide(slot, now)
        if action in ("start", "resume"):
            return self._send(slot, action)
        return None

    def _decide(self, slot: Slot, now: dt.datetime) -> str:
        with Session(self.engine) as session:
            edition = find_edition(session, slot.date)
            if edition is None:
                return self._unstarted(session, slot, now)
            if edition.status == EditionStatus.COMPLETE:
                self._note("complete", slot.date, logging.INFO,
                           "edition %s is complete: nothing to send", slot.date)
                return "complete"
            counts = tally.counts(session, edition.id)
        # Rows still `sending` belong to a live sender (expired leases were made `unknown`
        # by housekeeping); with none of those left, a resume also marks the edition done.
        if counts["pending"] or not (counts["sending"] or counts["unknown"]):
            return "resume"
        if counts["unknown"]:
            self._note("unknown", slot.date, logging.WARNING,
                       "edition %s: %d deliveries of unknown fate (a sender stopped mid-batch); "
                       "`newsletter send --date %s --resend-unknown` resends them",
                       slot.date, counts["unknown"], slot.date)
        return "busy"

    def _unstarted(self, session: Session, slot: Slot, now: dt.datetime) -> str:
        closes = slot.at + self.window
        has_stories = session.scalar(
            select(Story.id).where(Story.date == slot.date).limit(1)) is not None
        if now > closes:
            # A day without stories was alerted at its send time (below): nothing new.
            if has_stories and self._note(
                    "closed", slot.date, logging.WARNING, "edition %s was not sent and its "
                    "catch-up window closed at %s; `newsletter send --date %s` sends it by "
                    "hand", slot.date, self._local(closes), slot.date):
                alert(self.settings, f"edition {slot.date} was not sent: its catch-up window "
                      f"closed at {self._local(closes)}; `newsletter send --date {slot.date}` "
                      "sends it by hand")
            return "closed"
        if not has_stories:
            if self._note("no-stories", slot.date, logging.WARNING,
                          "no stories for %s yet: nothing sent; checking again until %s",
                          slot.date, self._local(closes)):
                alert(self.settings, f"the send time of edition {slot.date} passed without "
                      f"sending: no stories yet; imported by {self._local(closes)} they "
                      "still go out")
            return "no-stories"
        return "start"

    def _send(self, slot: Slot, action: str) -> SendReport:
        log.info("send %s: edition %s (scheduled %s)", "started" if action == "start"
                 else "resumed", slot.date, self._local(slot.at))
        report = SendRun(self.settings, self.engine, stop=self.stop).run_recorded(
            slot.date, "schedule", workers=self.settings.send_workers)
        log.info("send finished: %s, %s", report.outcome, report.summary)
        if report.complete:
            self._noted["complete"] = slot.date  # just said so
        return report

    def _local(self, instant: dt.datetime) -> str:
        return instant.astimezone(self.settings.zone).isoformat()

    def _note(self, key: str, day: dt.date, level: int, message: str, *args: object) -> bool:
        """Log a slot's state the first time it is seen, not at every check (True then)."""
        if self._noted.get(key) == day:
            return False
        self._noted[key] = day
        log.log(level, message, *args)
        return True
