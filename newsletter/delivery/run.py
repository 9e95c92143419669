"""A send run: freeze the day's edition, then workers claim, send and record batches.

Each worker has its own transport (one SMTP connection or HTTP session, reused) and takes
batches in short transactions (newsletter.delivery.ledger): nothing is held across network I/O. A
stop request (SIGTERM, Ctrl-C) ends the run between batches; the batch in flight is sent
and recorded first. A refused key or a lost database stops every worker and the run fails.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from newsletter.delivery import ledger
from newsletter.delivery.edition import freeze_edition, mark_complete, rendered
from newsletter.errors import SendError, TransportError
from newsletter.mail.links import Links
from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.providers import get_transport
from newsletter.providers.base import Transport
from newsletter.settings import Settings
from newsletter.store.models import utcnow
from newsletter.store.runs import recorded_run

log = logging.getLogger(__name__)
FINAL = ("sent", "failed", "skipped")
MAX_CALL_FAILURES = 3      # whole calls failed in a row before the run stops
CALL_RETRY_SECONDS = 30.0  # a released batch waits this long before it is claimed again


@dataclass
class Progress:
    """What a run did so far; `on_progress` gets it after every batch."""

    total: int = 0
    done_before: int = 0   # already final when this run started
    sent: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, results: list[Result]) -> None:
        with self.lock:
            self.sent += sum(r.delivered for r in results)
            self.failed += sum(not (r.delivered or r.transient or r.ambiguous)
                               for r in results)

    @property
    def done(self) -> int:
        return self.done_before + self.sent + self.failed


@dataclass(frozen=True)
class SendReport:
    date: object
    edition_id: int
    counts: dict[str, int]
    progress: Progress
    stopped: bool
    seconds: float

    @property
    def complete(self) -> bool:
        return all(self.counts[s] == 0 for s in ("pending", "sending", "unknown"))

    @property
    def outcome(self) -> str:
        if self.complete:
            return "complete"
        if self.stopped:
            return "stopped"
        if self.counts["sending"] and not self.counts["pending"]:
            return "done here"  # other senders are finishing their batches
        return "incomplete"

    @property
    def summary(self) -> str:
        c, p = self.counts, self.progress
        return (f"edition {self.date}: sent {p.sent} now ({c['sent']} in all), failed "
                f"{c['failed']}, skipped {c['skipped']}, pending {c['pending']}, unknown "
                f"{c['unknown']} in {self.seconds:.1f}s")


def check_can_send(settings: Settings,
                   transport_factory: Callable[[Settings], Transport] = get_transport) -> None:
    """Fail at start-up, not mid-run, on a missing secret key or transport option."""
    Links(settings)
    transport_factory(settings).close()


class RateLimiter:
    """Token bucket shared by the workers of one run (NEWSLETTER_RATE_LIMIT, per second)."""

    def __init__(self, per_second: float):
        self.rate, self.lock = per_second, threading.Lock()
        self.next_free = time.monotonic()

    def acquire(self, count: int, stop: threading.Event) -> None:
        if self.rate <= 0:
            return
        with self.lock:
            start = max(self.next_free, time.monotonic())
            self.next_free = start + count / self.rate
        stop.wait(max(0.0, start - time.monotonic()))

    def refund(self, count: int) -> None:
        """Give back what a claim did not use (it found fewer rows than reserved)."""
        if self.rate > 0 and count > 0:
            with self.lock:
                self.next_free = max(time.monotonic(), self.next_free - count / self.rate)


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
        self.links = Links(settings)
        self.errors: list[BaseException] = []
        self.lock = threading.Lock()
        self.call_failures = 0  # whole calls failed in a row, across workers

    def run(self, date, *, workers: int = 1, resend_unknown: bool = False) -> SendReport:
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
        content = rendered(edition)
        envelope = Envelope.from_settings(self.settings, content.subject, content.html,
                                          content.text)
        with Session(self.engine) as session:
            before = ledger.counts(session, edition.id)
        progress = Progress(total=sum(before.values()),
                            done_before=sum(before[s] for s in FINAL))
        self.on_progress(progress)
        limiter = RateLimiter(self.settings.rate_limit)
        threads = [threading.Thread(target=self._guarded, name=f"sender-{n}",
                                    args=(edition.id, date, envelope, limiter, progress))
                   for n in range(max(1, workers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if self.errors:
            raise _as_send_error(self.errors[0])
        with Session(self.engine) as session:
            after = ledger.counts(session, edition.id)
        report = SendReport(date, edition.id, after, progress, self.stop.is_set(),
                            time.monotonic() - started)
        if report.complete:
            mark_complete(self.engine, edition.id)
        return report

    def run_recorded(self, date, kind: str, **options) -> SendReport:
        """run(), with a row in `runs` saying when, how it ended, and the counts (status)."""
        with recorded_run(self.engine, kind, date) as record:
            report = self.run(date, **options)
            record.outcome, record.detail = report.outcome, report.summary
        return report

    def _guarded(self, *args) -> None:
        try:
            self._work(*args)
        except BaseException as err:  # noqa: BLE001 - reported by run() in the main thread
            self.errors.append(err)
            self.stop.set()

    def _work(self, edition_id: int, date, envelope: Envelope, limiter: RateLimiter,
              progress: Progress) -> None:
        worker = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        with self.transport_factory(self.settings) as transport:
            size = self._batch_size(transport)
            while not self.stop.is_set():
                # Wait for the rate limit before claiming, not after: a claim's lease must
                # cover only the sending itself.
                limiter.acquire(size, self.stop)
                if self.stop.is_set():
                    return
                batch = ledger.claim(self.engine, edition_id, date, worker, size,
                                     self.settings.lease_seconds)
                limiter.refund(size - len(batch))
                if not batch:
                    if not self._wait_for_retries(edition_id):
                        return
                    continue
                recipients = [Recipient(c.email, c.name,
                                        self.links.values(c.subscriber_id, c.email, date),
                                        delivery_id=c.delivery_id) for c in batch]
                self._send(transport, worker, envelope, recipients, progress)
                self.on_progress(progress)

    def _batch_size(self, transport: Transport) -> int:
        """NEWSLETTER_BATCH_SIZE within the provider's limit, and small enough that a
        rate-limited batch goes out well inside its lease."""
        size = min(self.settings.batch_size or transport.max_batch, transport.max_batch)
        if self.settings.rate_limit:
            size = min(size, max(1, int(self.settings.rate_limit
                                        * self.settings.lease_seconds / 4)))
        return size

    def _send(self, transport: Transport, worker: str, envelope: Envelope,
              recipients: list[Recipient], progress: Progress) -> None:
        try:
            results = transport.send_batch(envelope, recipients)
        except TransportError as err:
            results = err.partial
            self._call_failed(worker, recipients, err)
        else:
            with self.lock:
                self.call_failures = 0
        finally:
            if results:
                ledger.record(self.engine, worker, results)
                progress.add(results)

    def _call_failed(self, worker: str, recipients: list[Recipient],
                     err: TransportError) -> None:
        """The whole call failed: keep what is known (the caller records it), and never
        spend the recipients' own attempts on the provider's outage. A refused key, a
        refused request or several failures in a row stop the run, with nothing lost."""
        known = {r.recipient.delivery_id for r in err.partial}
        rest = [r.delivery_id for r in recipients if r.delivery_id not in known]
        if err.ambiguous:  # the crash window, without a crash: never resend silently
            untouched = {r.delivery_id for r in err.untouched}
            maybe = [d for d in rest if d not in untouched]
            ledger.mark_unknown(self.engine, worker, maybe, str(err))
            ledger.release(self.engine, worker, list(untouched))
            log.error("%s; %d deliveries marked unknown", err, len(maybe))
        else:
            ledger.release(self.engine, worker, rest, retry_in=CALL_RETRY_SECONDS,
                           why=str(err))
        with self.lock:
            self.call_failures += 1
            failures = self.call_failures
        if not err.transient:
            raise SendError(f"stopped: {err}") from None
        if failures >= MAX_CALL_FAILURES:
            raise SendError(f"stopped after {failures} failed calls in a row; nothing was "
                            f"lost, `newsletter send` resumes. Last: {err}") from None
        if not err.ambiguous:
            log.warning("%s; %d deliveries back to pending", err, len(rest))

    def _wait_for_retries(self, edition_id: int) -> bool:
        """True if pending retries remain (after waiting until one is due)."""
        with Session(self.engine) as session:
            due = ledger.next_due(session, edition_id)
        if due is None:
            return False
        self.stop.wait(min(5.0, max(0.05, (due - utcnow()).total_seconds())))
        return True


def _as_send_error(err: BaseException) -> BaseException:
    if isinstance(err, OperationalError):
        return SendError(f"stopped: the database is gone or refused us: "
                         f"{str(err.orig).strip()}")
    return err
