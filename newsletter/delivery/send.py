"""One sender: a thread with its own transport (one SMTP connection or HTTP session,
reused) that claims a batch, sends it, and records what happened, until nothing is due or
a stop is asked. Nothing is held across network I/O: claiming and recording are short
transactions of their own (newsletter.delivery.ledger).
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
from collections.abc import Callable

from newsletter.delivery.claim import Claimer, batch_size
from newsletter.delivery.record import Recorder
from newsletter.delivery.report import Progress
from newsletter.errors import TransportError
from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.providers.base import Transport
from newsletter.settings import Settings


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
        try:
            results = transport.send_batch(self.envelope, recipients)
        except TransportError as err:
            results = err.partial
            self.recorder.call_failed(self.name, recipients, err)
        else:
            self.recorder.call_succeeded()
        finally:
            if results:
                self.recorder.results(self.name, results)
