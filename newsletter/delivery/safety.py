"""When a run must stop on its own: the circuit breaker over the last attempts, and the
retry window over transient trouble (docs/ARCHITECTURE.md, "Failures")."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections import deque
from collections.abc import Sequence

from newsletter.errors import SendError, TransportError
from newsletter.mail.failures import Cause
from newsletter.mail.message import Result

MIN_REFUSALS = 5  # the breaker never trips on fewer refusals than this (a small list)


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
        self.refused = 0  # refusals in `recent`
        self.lock = threading.Lock()
        self.tripped: str | None = None

    def judge(self, results: Sequence[Result]) -> list[int]:
        """Add a batch's results one by one; returns the deliveries whose refusal is now
        judged. The trip is checked after every attempt, not per batch: a batch is larger
        than the window (100 SMTP copies, 1,000 on an ESP) and must not slide refusals
        out unjudged. Once tripped, nothing leaves the window any more."""
        judged = []
        with self.lock:
            for r in results:
                if not (r.delivered or r.cause.refusal):
                    continue  # deferred or ambiguous: the retry window's business
                self.recent.append((r.recipient.delivery_id, r.cause, r.error))
                self.refused += r.cause is not None
                if self.tripped:
                    continue
                if len(self.recent) > self.window:
                    delivery, cause, _ = self.recent.popleft()
                    if cause is not None:
                        self.refused -= 1
                        judged.append(delivery)
                if self.refused >= MIN_REFUSALS and self.refused > self.share * len(
                        self.recent):
                    self.tripped = (f"{self.refused} of the last {len(self.recent)} copies "
                                    f"were refused, so the relay or the provider is refusing "
                                    f"us, not the readers. Last answer: {r.error}")
        return judged

    def unjudged(self) -> list[int]:
        """Refused deliveries still in the window."""
        with self.lock:
            return [d for d, c, _ in self.recent if c is not None]

    def check(self) -> None:
        """Checked once a whole batch is accounted for."""
        if self.tripped:
            raise SendError(f"stopped by the circuit breaker: {self.tripped}. Nobody was "
                            "suppressed; those copies are pending again. Fix the cause and "
                            "run `newsletter send` again.")


class RetryWindow:
    """NEWSLETTER_RETRY_WINDOW: transient trouble (deferrals, a provider down) is retried
    with backoff, but once nothing has gone out for longer than the window while something
    was deferred, the run stops and the copies stay pending for the next `send`."""

    def __init__(self, window: dt.timedelta):
        self.window = window
        self.lock = threading.Lock()
        # Since when nothing has gone out and something was deferred (None: no trouble).
        self.since: float | None = None
        self.last = ""

    def note(self, results: Sequence[Result]) -> None:
        with self.lock:
            if any(r.delivered for r in results):
                self.since = None
            deferred = [r for r in results if r.transient]
            if deferred:
                self._trouble(deferred[-1].error or "deferred")

    def note_call(self, err: TransportError) -> None:
        """A whole call failed transiently."""
        with self.lock:
            self._trouble(str(err))

    def _trouble(self, what: str) -> None:
        self.last = what
        if self.since is None:
            self.since = time.monotonic()

    def check(self) -> None:
        with self.lock:
            since = self.since
        if since is not None and time.monotonic() - since > self.window.total_seconds():
            raise SendError(f"stopped: transient trouble for longer than "
                            f"NEWSLETTER_RETRY_WINDOW ({self.window}); the copies stay "
                            f"pending for the next `newsletter send`. Last answer: "
                            f"{self.last}")
