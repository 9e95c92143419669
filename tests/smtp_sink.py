"""The one SMTP server the tests talk to: a real aiosmtpd server on loopback that keeps
every message and answers as scripted (per-address RCPT replies, slow or silent DATA)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    session: int


class SmtpFake:
    """aiosmtpd handler: keeps what it receives; rcpt_script[address] lists the replies to
    that address's RCPT, one per attempt (accepted once they run out); `refuse` maps a
    command ("MAIL", "RCPT", "DATA") to the reply every such command gets while it is set
    (a misconfigured relay; DATA's comes after the whole message); data_delays holds
    per-message pauses before the DATA reply, `delay` a pause for every message; `resets`
    counts RSET commands."""

    def __init__(self, pipelining: bool = False) -> None:
        self.pipelining = pipelining
        self.messages: list[Received] = []
        self.rcpt_script: dict[str, list[str]] = {}
        self.refuse: dict[str, str] = {}
        self.data_delays: list[float] = []
        self.delay = 0.0
        self.sessions: set[int] = set()
        self.resets = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        session.host_name = hostname
        if self.pipelining:  # aiosmtpd reads commands in order, so pipelining just works
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802
        if "MAIL" in self.refuse:
            return self.refuse["MAIL"]
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RSET(self, server, session, envelope):  # noqa: N802
        self.resets += 1
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        self.sessions.add(id(session))
        script = self.rcpt_script.get(address)
        if script:
            return script.pop(0)
        if "RCPT" in self.refuse:
            return self.refuse["RCPT"]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        pause = self.data_delays.pop(0) if self.data_delays else self.delay
        if pause:
            await asyncio.sleep(pause)
        if "DATA" in self.refuse:
            return self.refuse["DATA"]
        self.messages.append(Received(envelope.mail_from, list(envelope.rcpt_tos),
                                      envelope.content, id(session)))
        return f"250 2.0.0 Ok: queued as Q{len(self.messages)}"

    def recipients(self) -> list[str]:
        return [address.lower() for m in list(self.messages) for address in m.rcpt_tos]


def start_smtp(handler: SmtpFake, **kwargs) -> Controller:
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    return controller


@contextlib.contextmanager
def running(handler: SmtpFake | None = None) -> Iterator[Controller]:
    """A started server (`.port`, `.handler`), stopped at the end."""
    controller = start_smtp(handler or SmtpFake())
    try:
        yield controller
    finally:
        controller.stop()
