"""One sender: a thread with its own transport (one SMTP connection or HTTP session,
reused) that claims a batch, sends it, and records what happened, until nothing is due or
a stop is asked. Nothing is held across network I/O: claiming and recording are short
transactions of their own (newsletter.delivery.ledger).
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import threading
import time
from collections.abc import Callable

from newsletter.delivery.claim import Claimer, batch_size
from newsletter.delivery.record import Recorder
from newsletter.delivery.report import Progress
from newsletter.errors import TransportError
from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.ops.metrics import PROVIDER_SECONDS
from newsletter.providers.base import Transport
from newsletter.settings import Settings

log = logging.getLogger(__name__)


class Sender:
    def __init__(self, settings: Settings, transport_factory: Callable[[Settings], Transport],
                 envelope: Envelope, claimer: Claimer, recorder: Recorder,
                 on_progress: Callable[[Progress], None], stop: threading.Event):
        self.settings, self.transport_factory = settings, transport_factory
        self.envelope, self.claimer, self.recorder = envelope, claimer, recorder
        self.on_progress, self.stop = on_progress, stop
        self.name = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"

    def __call__(self) -> None:
        with self.transport_factory(self.settings) as transport:
            size = batch_size(self.settings, transport)
            while not self.stop.is_set():
                recipients = self.claimer.next_batch(self.name, size)
                if recipients is None:
                    return
                if recipients:
                    self.send(transport, recipients)
                    self.on_progress(self.recorder.progress)

    def send(self, transport: Transport, recipients: list[Recipient]) -> None:
        results: list[Result] = []
        started = time.monotonic()
        try:
            results = transport.send_batch(self.envelope, recipients)
        except TransportError as err:
            results = err.partial
            self._took(transport, recipients, started, f"failed as a whole: {err}")
            self.recorder.call_failed(self.name, recipients, err)
        else:
            self._took(transport, recipients, started, "answered")
            self.recorder.call_succeeded()
        finally:
            if results:
                self.recorder.results(self.name, results)

    def _took(self, transport: Transport, recipients: list[Recipient], started: float,
              how: str) -> None:
        seconds = time.monotonic() - started
        PROVIDER_SECONDS.labels(transport=transport.name).observe(seconds)
        log.info("batch of %d sent to %s in %.2fs: %s", len(recipients), transport.name,
                 seconds, how)
