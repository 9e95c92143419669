"""Recording, the last step of a sender's loop: each recipient's fate goes to the ledger.

A call that failed as a whole keeps what is known, never spends the recipients' own
attempts on the provider's outage, and counts toward stopping the run: a refused key, a
refused request or several failures in a row stop it, with nothing lost.
"""

from __future__ import annotations

import logging
import threading

from sqlalchemy import Engine

from newsletter.delivery import ledger
from newsletter.delivery.report import Progress
from newsletter.errors import SendError, TransportError
from newsletter.mail.message import Recipient, Result
from newsletter.ops.metrics import FAILURES, count_results

log = logging.getLogger(__name__)
MAX_CALL_FAILURES = 3      # whole calls failed in a row before the run stops
CALL_RETRY_SECONDS = 30.0  # a released batch waits this long before it is claimed again


class Recorder:
    """Shared by the senders of a run: the progress, and whole calls failed in a row."""

    def __init__(self, engine: Engine, progress: Progress):
        self.engine, self.progress = engine, progress
        self.lock = threading.Lock()
        self.call_failures = 0

    def results(self, worker: str, results: list[Result]) -> None:
        ledger.record(self.engine, worker, results)
        self.progress.add(results)
        count_results(results)
        outcome: dict[str, int] = {}
        for result in results:
            key = "retry" if result.transient and not result.ambiguous else \
                "unknown" if result.ambiguous else result.status
            outcome[key] = outcome.get(key, 0) + 1
        log.info("recorded: %s", ", ".join(f"{n} {k}" for k, n in sorted(outcome.items())),
                 extra={"results": outcome})
        for result in results:
            if not result.delivered:  # addresses only at debug level
                log.debug("%s: %s %s", result.recipient.email, result.status, result.error)

    def call_succeeded(self) -> None:
        with self.lock:
            self.call_failures = 0

    def call_failed(self, worker: str, recipients: list[Recipient],
                    err: TransportError) -> None:
        """The rows the failed call leaves: back to pending, or `unknown` when the call
        may have reached the provider (the caller records err.partial). Raises SendError
        when the run must stop."""
        FAILURES.labels(**{"class": "call_ambiguous" if err.ambiguous else "call_transient"
                           if err.transient else "call_refused"}).inc()
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
