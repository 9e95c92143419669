"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives and can be told to
answer some recipients with an error code, or to be slow."""

from __future__ import annotations

import email
import email.policy
import threading
import time
from dataclasses import dataclass, field

from aiosmtpd.controller import Controller


@dataclass
class Sink:
    messages: list[email.message.EmailMessage] = field(default_factory=list)
    # address -> replies to its RCPT, one per attempt; accepted once they run out.
    refuse: dict[str, list[str]] = field(default_factory=dict)
    delay: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_RCPT(self, server, session, envelope, address, options):
        with self.lock:
            replies = self.refuse.get(address.lower())
            reply = replies.pop(0) if replies else None
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.delay:
            time.sleep(self.delay)  # blocks the loop on purpose: a slow server
        message = email.message_from_bytes(envelope.original_content or envelope.content,
                                           policy=email.policy.default)
        with self.lock:
            self.messages.append(message)
        return "250 queued as sink"

    def recipients(self) -> list[str]:
        with self.lock:
            return [str(m["To"].addresses[0].addr_spec).lower() for m in self.messages]


class SinkServer:
    def __init__(self, sink: Sink | None = None, port: int = 0):
        self.sink = sink or Sink()
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=port or _free_port())

    def __enter__(self) -> SinkServer:
        self.controller.start()
        return self

    def __exit__(self, *exc) -> None:
        self.controller.stop()

    @property
    def port(self) -> int:
        return self.controller.port


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
