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

from newsletter.delivery import ledger
from newsletter.delivery.claim import Claimer, batch_size
from newsletter.delivery.record import Recorder
from newsletter.delivery.report import Progress
from newsletter.errors import SendError, TransportBug, TransportError
from newsletter.mail.message import Envelope, Recipient
from newsletter.ops.metrics import PROVIDER_SECONDS
from newsletter.providers.base import Transport
from newsletter.settings import Settings
from newsletter.store.leases import Heartbeat

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
        # The heartbeat renews this sender's leases while a batch is in flight, so a slow
        # provider never makes a live sender's rows `unknown` (newsletter.store.leases).
        with (self.transport_factory(self.settings) as transport,
              Heartbeat(self.recorder.engine, self.name, self.settings.lease_seconds)):
            size = batch_size(self.settings, transport)
            while not self.stop.is_set():
                self.recorder.retry_window.check()
                recipients = self.claimer.next_batch(self.name, size)
                if recipients is None:
                    return
                if recipients:
                    self.send(transport, recipients)
                    self.on_progress(self.recorder.progress)

    def send(self, transport: Transport, recipients: list[Recipient]) -> None:
        started = time.monotonic()
        try:
            results = transport.send_batch(self.envelope, recipients)
        except TransportError as err:
            self._took(transport, recipients, started, f"failed as a whole: {err}")
            self.recorder.results(self.name, err.partial)
            self.recorder.call_failed(self.name, recipients, err)
            if isinstance(err, TransportBug):  # recorded like a timeout, then the run stops
                log.error("bug in the %s transport", transport.name, exc_info=err.__cause__)
                raise SendError(f"stopped by {err}; what went out is recorded, the copy in "
                                "hand is `unknown`, the rest back to pending. The traceback "
                                "is in the log.") from err
        except Exception as err:
            # Not a refusal but a bug of ours: nothing is known to have gone out of this
            # batch's unfinished part, and guessing would be worse. Keep the traceback.
            log.exception("bug in the %s transport; the batch goes back to pending",
                          transport.name)
            ledger.release(self.recorder.engine, self.name, [r.delivery_id for r in recipients],
                           why=f"a bug in the {transport.name} transport: {err!r}")
            raise SendError(f"stopped by a bug in the {transport.name} transport "
                            f"({type(err).__name__}: {err}); the batch went back to pending "
                            "and nothing was lost. The traceback is in the log.") from err
        else:
            self._took(transport, recipients, started, "answered")
            self.recorder.call_succeeded(self.name, results)
        self.recorder.breaker.check()  # once the whole batch is accounted for

    def _took(self, transport: Transport, recipients: list[Recipient], started: float,
              how: str) -> None:
        seconds = time.monotonic() - started
        PROVIDER_SECONDS.labels(transport=transport.name).observe(seconds)
        log.info("batch of %d sent to %s in %.2fs: %s", len(recipients), transport.name,
                 seconds, how)
