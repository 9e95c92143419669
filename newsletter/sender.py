"""A send run: freeze the day's edition, then workers claim, send and record batches.

Each worker has its own transport (one SMTP connection or HTTP session, reused) and takes
batches in short transactions (newsletter.ledger): nothing is held across network I/O. A
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
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from newsletter import ledger
from newsletter.edition import freeze_edition, mark_complete, rendered
from newsletter.errors import SendError, TransportError
from newsletter.failures import Cause
from newsletter.links import Links
from newsletter.message import Envelope, Recipient, Result
from newsletter.models import utcnow
from newsletter.runs import recorded_run
from newsletter.settings import Settings
from newsletter.transports import get_transport
from newsletter.transports.base import Transport

log = logging.getLogger(__name__)
FINAL = ("sent", "failed", "skipped")
MIN_REFUSALS = 5  # the breaker never trips on fewer refusals than this (a small list)
MAX_AMBIGUOUS_CALLS = 2  # calls in a row of unknown fate before the run stops


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
            self.failed += sum(r.cause is not None and r.cause.refusal for r in results)

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


class Breaker:
    """The circuit breaker: a rate of refusals says more than any one reply (a relay that
    believes it is the final destination answers 550 5.1.1 to everyone).

    It holds the last `window` attempts. When permanent refusals among them are more than
    `percent` of them (and at least MIN_REFUSALS), the run stops and the refusals still in
    the window are reopened, nobody suppressed. A refusal that leaves the window without a
    trip is judged: its address may be suppressed."""

    def __init__(self, window: int, percent: float):
        self.window, self.share = window, percent / 100
        self.recent: deque[tuple[int, Cause | None, str | None]] = deque()
        self.lock = threading.Lock()
        self.tripped: str | None = None

    def judge(self, results: Sequence[Result]) -> list[int]:
        """Add a batch's results; returns the deliveries whose refusal is now judged."""
        judged = []
        with self.lock:
            for r in results:
                if r.delivered or r.cause.refusal:
                    self.recent.append((r.recipient.delivery_id, r.cause, r.error))
                if len(self.recent) > self.window:
                    delivery, cause, _ = self.recent.popleft()
                    if cause is not None:
                        judged.append(delivery)
            refused = [(d, e) for d, c, e in self.recent if c is not None]
            if (self.tripped is None and len(refused) >= MIN_REFUSALS
                    and len(refused) > self.share * len(self.recent)):
                self.tripped = (f"{len(refused)} of the last {len(self.recent)} copies were "
                                f"refused, so the relay or the provider is refusing us, not "
                                f"the readers. Last answer: {refused[-1][1]}")
        return judged

    def unjudged(self) -> list[int]:
        """Refused deliveries still in the window."""
        with self.lock:
            return [d for d, c, _ in self.recent if c is not None]


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
        self.breaker = Breaker(settings.breaker_window, settings.breaker_percent)
        # Since when nothing has gone out and something was deferred (None: no trouble);
        # past NEWSLETTER_RETRY_WINDOW the run stops, the copies left pending.
        self.trouble_since: float | None = None
        self.last_trouble = ""
        self.call_failures = 0  # whole calls failed in a row, across workers: the backoff
        self.ambiguous_calls = 0  # calls in a row whose fate is unknown

    def run(self, date, *, workers: int = 1, resend_unknown: bool = False,
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
        self._settle_refusals()
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
        host = self.settings.message_id_host
        with self.transport_factory(self.settings) as transport:
            size = self._batch_size(transport)
            while not self.stop.is_set():
                self._check_retry_window()
                # Wait for the rate limit before claiming, not after: a claim's lease must
                # cover only the sending itself.
                limiter.acquire(size, self.stop)
                if self.stop.is_set():
                    return
                batch = ledger.claim(self.engine, edition_id, date, worker, size,
                                     self.settings.lease_seconds, host)
                limiter.refund(size - len(batch))
                if not batch:
                    if not self._wait_for_retries(edition_id):
                        return
                    continue
                recipients = [Recipient(c.email, c.name,
                                        self.links.values(c.subscriber_id, c.email, date),
                                        delivery_id=c.delivery_id, message_id=c.message_id)
                              for c in batch]
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
            self._record(worker, err.partial, progress)
            self._call_failed(worker, recipients, err)
        except Exception as err:
            # Not a refusal but a bug of ours: nothing is known to have gone out of this
            # batch's unfinished part, and guessing would be worse. Keep the traceback.
            log.exception("bug in the %s transport; the batch goes back to pending",
                          transport.name)
            ledger.release(self.engine, worker, [r.delivery_id for r in recipients],
                           why=f"a bug in the {transport.name} transport: {err!r}")
            raise SendError(f"stopped by a bug in the {transport.name} transport "
                            f"({type(err).__name__}: {err}); the batch went back to pending "
                            "and nothing was lost. The traceback is in the log.") from err
        else:
            stopping = [r for r in results if r.cause is not None and r.cause.stops_run]
            self._record(worker, [r for r in results if r not in stopping], progress)
            if stopping:
                ledger.release(self.engine, worker,
                               [r.recipient.delivery_id for r in stopping],
                               why=stopping[0].error)
                raise SendError(f"stopped: {stopping[0].error} (about us, not the reader: "
                                f"nobody was suppressed; fix it and run `newsletter send` "
                                f"again)")
            with self.lock:
                self.call_failures = self.ambiguous_calls = 0
        if self.breaker.tripped:  # checked once the whole batch is accounted for
            raise SendError(f"stopped by the circuit breaker: {self.breaker.tripped}. "
                            "Nobody was suppressed; those copies are pending again. Fix "
                            "the cause and run `newsletter send` again.")

    def _record(self, worker: str, results: list[Result], progress: Progress) -> None:
        if not results:
            return
        ledger.record(self.engine, worker, results)
        progress.add(results)
        self._note_trouble(results)
        ledger.suppress_refused(self.engine, self.breaker.judge(results))

    def _note_trouble(self, results: Sequence[Result]) -> None:
        with self.lock:
            if any(r.delivered for r in results):
                self.trouble_since = None
            deferred = [r for r in results if r.transient]
            if deferred:
                self.last_trouble = deferred[-1].error or "deferred"
                if self.trouble_since is None:
                    self.trouble_since = time.monotonic()

    def _check_retry_window(self) -> None:
        with self.lock:
            since = self.trouble_since
        window = self.settings.retry_window.total_seconds()
        if since is not None and time.monotonic() - since > window:
            raise SendError(f"stopped: transient trouble for longer than "
                            f"NEWSLETTER_RETRY_WINDOW ({self.settings.retry_window}); the "
                            f"copies stay pending for the next `newsletter send`. Last "
                            f"answer: {self.last_trouble}")

    def _call_failed(self, worker: str, recipients: list[Recipient],
                     err: TransportError) -> None:
        """The whole call failed: keep what is known (recorded already), and never spend
        the recipients' own attempts on the provider's outage. Transient trouble is
        retried with backoff within the retry window; an ambiguous call is parked
        `unknown`; anything else (a refused key, a refused request) stops the run."""
        known = {r.recipient.delivery_id for r in err.partial}
        rest = [r.delivery_id for r in recipients if r.delivery_id not in known]
        if err.ambiguous:  # the crash window, without a crash: never resend silently
            untouched = {r.delivery_id for r in err.untouched}
            maybe = [d for d in rest if d not in untouched]
            ledger.mark_unknown(self.engine, worker, maybe, str(err))
            ledger.release(self.engine, worker, list(untouched))
            log.error("%s; %d deliveries marked unknown", err, len(maybe))
            with self.lock:
                self.ambiguous_calls += 1
                again = self.ambiguous_calls >= MAX_AMBIGUOUS_CALLS
            if again:  # not a blip: every further call could end the same way
                raise SendError(f"stopped after {MAX_AMBIGUOUS_CALLS} calls in a row whose "
                                f"fate is unknown: {err}. `newsletter status --failures` "
                                "lists them, `newsletter send --resend-unknown` resends "
                                "them") from None
            return
        if not err.transient:
            ledger.release(self.engine, worker, rest, why=str(err))
            raise SendError(f"stopped: {err} (nobody was suppressed; fix it and run "
                            f"`newsletter send` again)") from None
        with self.lock:
            self.call_failures += 1
            failures = self.call_failures
            self.last_trouble = str(err)
            if self.trouble_since is None:
                self.trouble_since = time.monotonic()
        ledger.release(self.engine, worker, rest, retry_in=ledger.backoff(failures),
                       why=str(err))
        log.warning("%s; %d deliveries back to pending", err, len(rest))

    def _settle_refusals(self) -> None:
        """After the workers: refusals the breaker had not judged yet are suppressed when
        the run ended normally, reopened (nobody suppressed) when it stopped early."""
        unjudged = self.breaker.unjudged()
        if self.errors or self.stop.is_set():
            ledger.reopen(self.engine, unjudged, "refused in a run that stopped before the "
                          "refusal could be judged: to be tried again")
        else:
            ledger.suppress_refused(self.engine, unjudged)

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
