"""Claiming, the first step of a sender's loop: wait for the rate limit, take a batch of
due deliveries under a lease (newsletter.delivery.ledger), and make each one a recipient
with its own signed links.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from newsletter.delivery import ledger
from newsletter.mail.links import Links
from newsletter.mail.message import Recipient
from newsletter.providers.base import Transport
from newsletter.settings import Settings
from newsletter.store.models import utcnow

log = logging.getLogger(__name__)


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


def batch_size(settings: Settings, transport: Transport) -> int:
    """NEWSLETTER_BATCH_SIZE within the provider's limit, and small enough that a
    rate-limited batch goes out well inside its lease."""
    size = min(settings.batch_size or transport.max_batch, transport.max_batch)
    if settings.rate_limit:
        size = min(size, max(1, int(settings.rate_limit * settings.lease_seconds / 4)))
    return size


class Claimer:
    """Claims batches of one edition for the senders of a run."""

    def __init__(self, settings: Settings, engine: Engine, edition_id: int, date: dt.date,
                 stop: threading.Event):
        self.settings, self.engine, self.stop = settings, engine, stop
        self.edition_id, self.date = edition_id, date
        self.links = Links(settings)
        self.limiter = RateLimiter(settings.rate_limit)
        self.after: dict[str, int] = {}  # each sender's last claimed id (ledger.claim)

    def next_batch(self, worker: str, size: int) -> list[Recipient] | None:
        """Up to `size` recipients; [] when only retries not yet due remain (after waiting
        a little for them) or nothing is left above this sender's last batch (the next
        claim starts from the first id); None when nothing is left or a stop was asked."""
        # Wait for the rate limit before claiming, not after: a claim's lease must cover
        # only the sending itself.
        self.limiter.acquire(size, self.stop)
        if self.stop.is_set():
            return None
        after = self.after.get(worker, 0)
        batch = ledger.claim(self.engine, self.edition_id, self.date, worker, size,
                             self.settings.lease_seconds, self.settings.message_id_host, after)
        self.limiter.refund(size - len(batch))
        if not batch:
            if after:  # once more from the start: retries due, rows given back
                self.after[worker] = 0
                return []
            return [] if self._wait_for_retries() else None
        self.after[worker] = batch[-1].delivery_id
        log.info("claimed %d deliveries for %s", len(batch), worker)
        return [Recipient(c.email, c.name, self.links.values(c.subscriber_id, c.email, self.date),
                          delivery_id=c.delivery_id, message_id=c.message_id) for c in batch]

    def _wait_for_retries(self) -> bool:
        """True if pending retries remain (after waiting until one is due)."""
        with Session(self.engine) as session:
            due = ledger.next_due(session, self.edition_id)
        if due is None:
            return False
        self.stop.wait(min(5.0, max(0.05, (due - utcnow()).total_seconds())))
        return True
