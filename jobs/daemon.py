"""The daemon: APScheduler wakes it, a reconcile pass decides what is due.

docs/ARCHITECTURE.md, "Scheduling facts": APScheduler's defaults drop a run that is 1 s
late, and a job store must never be shared between scheduler processes. So the jobs live in
memory, never expire (misfire_grace_time=None, coalesce=True), and only set an event; the
main thread then runs housekeeping and the reconcile pass (jobs.reconcile), which reads the
clock and the database. Two wake-ups:

- at each slot, from SlotTrigger, which asks jobs.clock, so the wake-up and the pass agree
  on DST days (measured with APScheduler 3.11: a cron trigger for 01:30 fires twice on a
  fall-back night, and for 02:30 at 03:30 on a spring-forward one);
- every few minutes, the safety net: catch-up after downtime, late stories, retries.

Beside them a thread drains the mail queue every few seconds (sign-up confirmations,
newsletter.delivery.mail_drain), so a long send never delays a confirmation.
With NEWSLETTER_BOUNCE_FETCH_MINUTES (and NEWSLETTER_BOUNCE_IMAP_URL), a third job reads the
bounce mailbox in the scheduler's own thread: a long send never delays it, and it touches
only rows that are already sent.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from zoneinfo import ZoneInfo

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from jobs.clock import next_slot
from jobs.housekeeping import housekeeping
from jobs.reconcile import Reconciler
from newsletter.bounces.imap import fetch as fetch_bounces
from newsletter.bounces.process import summary
from newsletter.delivery.mail_drain import MailDrain
from newsletter.delivery.prune import prune
from newsletter.delivery.run import check_can_send
from newsletter.errors import NewsletterError
from newsletter.ops import metrics
from newsletter.settings import Settings
from newsletter.store.models import utcnow

log = logging.getLogger(__name__)
steps = logging.getLogger("jobs.steps")  # each check, shown with -v
STOP_POLL_SECONDS = 0.5
DRAIN_EVERY = 5.0  # seconds between looks at the mail queue


class SlotTrigger(BaseTrigger):
    """Fires once at each daily slot, as jobs.clock defines it (DST policy included)."""

    __slots__ = ("send_time", "zone")

    def __init__(self, send_time: dt.time, zone: ZoneInfo):
        self.send_time, self.zone = send_time, zone

    def get_next_fire_time(self, previous_fire_time: dt.datetime | None,
                           now: dt.datetime) -> dt.datetime:
        return next_slot(now, self.send_time, self.zone).at

    def __str__(self) -> str:
        return f"daily at {self.send_time:%H:%M} {self.zone.key}"


class Daemon:
    def __init__(self, settings: Settings, engine: Engine, *, check_every: float = 300.0):
        # Bad settings stop the daemon at start-up, not at the first send hours later.
        check_can_send(settings)
        self.settings, self.engine, self.check_every = settings, engine, check_every
        self.stop = threading.Event()
        self._wake = threading.Event()
        self.reconcile = Reconciler(settings, engine, self.stop)
        self._pruned_on: dt.date | None = None

    def request_stop(self) -> None:
        """No new claims; the batch in flight is sent and recorded (newsletter.delivery.run), then
        run() returns. Safe in a signal handler: it takes no lock the interrupted main thread
        may hold (only worker threads wait on `stop`; the main loop polls it)."""
        self.stop.set()

    def run(self) -> None:
        server = self._serve_metrics()
        scheduler = self._scheduler()
        scheduler.start()
        s = self.settings
        log.info("started: daily send at %s %s, catch-up window %gh, checks every %gs",
                 f"{s.send_time:%H:%M}", s.timezone, s.catchup_hours, self.check_every)
        self._log_next()
        self._wake.set()  # check at once: a send missed while down goes out now
        drain = MailDrain(self.settings, self.engine).start(self.stop, DRAIN_EVERY)
        try:
            while not self.stop.is_set():
                if self._wake.wait(STOP_POLL_SECONDS):
                    self._wake.clear()
                    self._check()
        finally:
            scheduler.shutdown()
            drain.join(timeout=10)  # an email in flight is recorded before exit
            if server is not None:
                server.shutdown()
        log.info("stopped")

    def _serve_metrics(self):
        """NEWSLETTER_METRICS_PORT: the store's gauges and this process's run counters."""
        port = self.settings.metrics_port
        if port is None:
            return None
        from prometheus_client import start_http_server

        try:
            server, _thread = start_http_server(
                port, registry=metrics.registry(self.engine, runs=True))
        except OSError as err:
            raise NewsletterError(f"NEWSLETTER_METRICS_PORT: cannot listen on {port}: "
                                  f"{err.strerror}") from None
        log.info("metrics on http://0.0.0.0:%d/metrics", port)
        return server

    def _scheduler(self) -> BackgroundScheduler:
        scheduler = BackgroundScheduler(
            timezone=self.settings.zone,
            job_defaults={"misfire_grace_time": None, "coalesce": True, "max_instances": 1})
        scheduler.add_job(self._wake.set, SlotTrigger(self.settings.send_time,
                                                      self.settings.zone),
                          id="send", name="daily send")
        scheduler.add_job(self._wake.set, IntervalTrigger(seconds=self.check_every),
                          id="check", name="catch-up and housekeeping")
        minutes = self.settings.bounce_fetch_minutes
        if minutes:
            scheduler.add_job(self._fetch_bounces, IntervalTrigger(minutes=minutes),
                              id="bounces", name="bounce mailbox",
                              next_run_time=utcnow())
        return scheduler

    def _fetch_bounces(self) -> None:
        try:
            tally = fetch_bounces(self.settings, self.engine)
        except (NewsletterError, SQLAlchemyError) as err:
            log.error("bounce fetch failed, trying again in %d minutes: %s",
                      self.settings.bounce_fetch_minutes, err)
            return
        if tally:
            log.info("bounce mailbox: %s", summary(tally))

    def _check(self) -> None:
        steps.info("check: housekeeping, then is a send due?")
        try:
            housekeeping(self.engine)
            report = self.reconcile()
        except (NewsletterError, SQLAlchemyError) as err:
            metrics.DAEMON_CHECKS.labels(result="error").inc()
            log.error("check failed, trying again within %gs: %s", self.check_every, err)
            return
        metrics.DAEMON_CHECKS.labels(result="ok").inc()
        steps.info("check done: %s", "sent" if report is not None else "nothing to send")
        if report is not None:
            self._log_next()
        self._prune_daily()

    def _prune_daily(self) -> None:
        """Once a day, after the send pass: old editions keep only their counts."""
        today = self.settings.today()
        if self._pruned_on == today or self.stop.is_set():
            return
        try:
            report = prune(self.engine, self.settings.keep_days, today)
        except SQLAlchemyError as err:
            log.error("prune failed, trying again at the next check: %s", err)
            return
        self._pruned_on = today
        if report.rows:
            log.info("pruned %d delivery rows of %d editions older than %d days",
                     report.rows, report.editions, self.settings.keep_days)

    def _log_next(self) -> None:
        slot = next_slot(utcnow(), self.settings.send_time, self.settings.zone)
        log.info("next scheduled send: edition %s at %s", slot.date,
                 slot.at.astimezone(self.settings.zone).isoformat())
