"""A send run: freeze the day's edition, then senders claim, send and record batches.

Each sender (newsletter.delivery.send) is a thread with its own transport; they share the
claimer (rate limit, newsletter.delivery.claim) and the recorder (progress, whole calls
failed in a row, newsletter.delivery.record). A stop request (SIGTERM, Ctrl-C) ends the run
between batches; the batch in flight is sent and recorded first. A refused key or a lost
database stops every sender and the run fails.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from newsletter.delivery import ledger, tally
from newsletter.delivery.claim import Claimer
from newsletter.delivery.edition import freeze_edition, mark_complete, rendered
from newsletter.delivery.record import Recorder
from newsletter.delivery.report import Progress, SendReport
from newsletter.delivery.send import Sender
from newsletter.errors import NoStories, SendError
from newsletter.mail.links import Links
from newsletter.mail.message import Envelope
from newsletter.ops import metrics
from newsletter.ops.alerts import alert, failed_share_alert
from newsletter.ops.logs import in_context, run_context
from newsletter.providers import get_transport
from newsletter.providers.base import Transport
from newsletter.settings import Settings
from newsletter.store.models import Edition
from newsletter.store.runs import recorded_run

log = logging.getLogger(__name__)


def check_can_send(settings: Settings,
                   transport_factory: Callable[[Settings], Transport] = get_transport) -> None:
    """Fail at start-up, not mid-run, on a missing secret key or transport option."""
    Links(settings)
    transport_factory(settings).close()


class SendRun:
    def __init__(self, settings: Settings, engine: Engine, *,
                 stop: threading.Event | None = None,
                 on_progress: Callable[[Progress], None] | None = None,
                 transport_factory: Callable[[Settings], Transport] = get_transport):
        self.settings, self.engine = settings, engine
        self.stop = stop or threading.Event()
        self.on_progress = on_progress or (lambda progress: None)
        self.transport_factory = transport_factory
        check_can_send(settings, transport_factory)  # before the edition is frozen
        self.errors: list[BaseException] = []

    def run(self, date: dt.date, *, workers: int = 1, resend_unknown: bool = False,
            retry_failed: bool = False) -> SendReport:
        started = time.monotonic()
        if self.settings.transport != "outbox" and not self.settings.base_url.startswith(
                "https://"):
            log.warning("NEWSLETTER_BASE_URL is %s: unsubscribe links should be https "
                        "(RFC 8058; Gmail and Yahoo expect it)", self.settings.base_url)
        ledger.expire_leases(self.engine)
        with Session(self.engine, expire_on_commit=False) as session, session.begin():
            edition = freeze_edition(session, self.settings, date)
        if resend_unknown:
            requeued = ledger.requeue_unknown(self.engine, edition.id)
            log.warning("resending %d deliveries of unknown fate", requeued)
        if retry_failed:
            log.warning("resending %d failed deliveries",
                        ledger.retry_failed(self.engine, edition.id))
        before = self._counts(edition.id)
        log.info("edition %s: %d deliveries, %d still to send; %d sender(s) via %s", date,
                 sum(before.values()), before["pending"] + before["sending"], workers,
                 self.settings.transport, extra={"counts": before})
        progress = Progress.starting(before)
        self.on_progress(progress)
        settled_before = not (before["pending"] or before["sending"])
        if not settled_before:  # else no sender starts: none would connect to the provider
            self._send(edition, date, progress, workers)
        report = SendReport(date, edition.id, self._counts(edition.id), progress,
                            self.stop.is_set(), time.monotonic() - started,
                            settled_before=settled_before)
        if report.complete:
            mark_complete(self.engine, edition.id)
        return report

    def run_recorded(self, date: dt.date, kind: str, **options) -> SendReport:
        """run(), with a row in `runs` saying when, how it ended, and the counts (status);
        its metrics; its log records carrying the edition date and run id; an alert when
        it stops on an error or finishes the edition with too many failed or unknown."""
        started = time.monotonic()
        with recorded_run(self.engine, kind, date) as record, run_context(
                edition=date.isoformat(), run_id=record.id) as fields:
            try:
                report = self.run(date, **options)
            except Exception as err:
                metrics.count_run("failed", time.monotonic() - started)
                if not isinstance(err, NoStories):  # nothing started: the command says so
                    alert(self.settings, f"send run {record.id} for edition {date} stopped: "
                          f"{err}")
                raise
            record.outcome, record.detail = report.outcome, report.summary
            fields["counts"] = report.counts
            log.info("run finished: %s", report.summary, extra={"outcome": report.outcome})
        metrics.count_run(report.outcome, report.seconds)
        if report.settled and not report.settled_before:
            too_many = failed_share_alert(self.settings, date.isoformat(), report.counts)
            if too_many:
                alert(self.settings, too_many)
        return report

    def _send(self, edition: Edition, date: dt.date, progress: Progress,
              workers: int) -> None:
        """Senders in threads until the edition is done or stopped; the first error wins."""
        content = rendered(edition)
        envelope = Envelope.from_settings(self.settings, content.subject, content.html,
                                          content.text)
        claimer = Claimer(self.settings, self.engine, edition.id, date, self.stop)
        recorder = Recorder(self.settings, self.engine, progress)
        # Each thread logs with this run's fields (edition, run id).
        threads = [threading.Thread(target=in_context(self._guarded), name=f"sender-{n}",
                                    args=(Sender(
            self.settings, self.transport_factory, envelope, claimer, recorder,
            self.on_progress, self.stop),)) for n in range(max(1, workers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        recorder.settle(stopped_early=bool(self.errors) or self.stop.is_set())
        if self.errors:
            raise _as_send_error(self.errors[0])

    def _guarded(self, sender: Sender) -> None:
        try:
            sender()
        except BaseException as err:  # noqa: BLE001 - reported by run() in the main thread
            self.errors.append(err)
            self.stop.set()

    def _counts(self, edition_id: int) -> dict[str, int]:
        with Session(self.engine) as session:
            return tally.counts(session, edition_id)


def _as_send_error(err: BaseException) -> BaseException:
    if isinstance(err, OperationalError):
        return SendError(f"stopped: the database is gone or refused us: "
                         f"{str(err.orig).strip()}")
    return err
