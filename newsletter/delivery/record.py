"""Recording, the last step of a sender's loop: each recipient's fate goes to the ledger.

A call that failed as a whole keeps what is known and never spends the recipients' own
attempts on the provider's outage: transient trouble is retried with backoff within the
retry window, an ambiguous call is parked `unknown`, and anything about us (a refused key,
a refused request, a refusal of the message or our sender) stops the run with nobody
suppressed. Refusals of one reader go through the circuit breaker before anyone is
suppressed (newsletter.delivery.safety).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter

from sqlalchemy import Engine

from newsletter.delivery import ledger
from newsletter.delivery.report import Progress
from newsletter.delivery.safety import Breaker, RetryWindow
from newsletter.errors import SendError, TransportError
from newsletter.mail.message import Recipient, Result
from newsletter.ops.metrics import FAILURES, count_results
from newsletter.settings import Settings

log = logging.getLogger(__name__)
MAX_AMBIGUOUS_CALLS = 2  # calls in a row of unknown fate before the run stops


class Recorder:
    """Shared by the senders of a run: the progress, the breaker, the retry window, and
    whole calls failed in a row."""

    def __init__(self, settings: Settings, engine: Engine, progress: Progress):
        self.engine, self.progress = engine, progress
        self.breaker = Breaker(settings.breaker_window, settings.breaker_percent)
        self.retry_window = RetryWindow(settings.retry_window)
        self.lock = threading.Lock()
        self.call_failures = 0  # whole calls failed in a row, across workers: the backoff
        self.ambiguous_calls = 0  # calls in a row whose fate is unknown

    def results(self, worker: str, results: list[Result]) -> None:
        if not results:
            return
        ledger.record(self.engine, worker, results)
        self.progress.add(results)
        self.retry_window.note(results)
        ledger.suppress_refused(self.engine, self.breaker.judge(results))
        tally = Counter((r.status, r.cause and str(r.cause)) for r in results)
        count_results(tally)
        outcome = {status if cause is None else f"failed ({cause})": count
                   for (status, cause), count in tally.items()}
        log.info("recorded: %s", ", ".join(f"{n} {k}" for k, n in sorted(outcome.items())),
                 extra={"results": outcome})
        for result in results:
            if not result.delivered:  # addresses only at debug level
                log.debug("%s: %s %s", result.recipient.email, result.cause, result.error)

    def call_succeeded(self, worker: str, results: list[Result]) -> None:
        """A call answered: record it, unless a copy's refusal is about us (the message,
        our sender): then those go back to pending and the run stops."""
        stopping = [r for r in results if r.cause is not None and r.cause.stops_run]
        self.results(worker, [r for r in results if r not in stopping])
        if stopping:
            ledger.release(self.engine, worker, [r.recipient.delivery_id for r in stopping],
                           why=stopping[0].error)
            raise SendError(f"stopped: {stopping[0].error} (about us, not the reader: "
                            f"nobody was suppressed; fix it and run `newsletter send` again)")
        with self.lock:
            self.call_failures = self.ambiguous_calls = 0

    def call_failed(self, worker: str, recipients: list[Recipient],
                    err: TransportError) -> None:
        """The whole call failed: what it left goes back to pending or is parked `unknown`
        (the caller recorded err.partial). Raises SendError when the run must stop."""
        FAILURES.labels(**{"class": f"call_{err.cause}"}).inc()
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
        self.retry_window.note_call(err)
        ledger.release(self.engine, worker, rest, retry_in=ledger.retry_in(failures),
                       why=str(err))
        log.warning("%s; %d deliveries back to pending", err, len(rest))

    def settle(self, stopped_early: bool) -> None:
        """After the senders: refusals the breaker had not judged yet are suppressed when
        the run ended normally, reopened (nobody suppressed) when it stopped early."""
        unjudged = self.breaker.unjudged()
        if stopped_early:
            ledger.reopen(self.engine, unjudged, "refused in a run that stopped before the "
                          "refusal could be judged: to be tried again")
        else:
            ledger.suppress_refused(self.engine, unjudged)
