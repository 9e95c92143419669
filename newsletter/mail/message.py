"""One recipient's message, as data: what every transport takes.

An `Envelope` is what all copies of one send share (rendered once); a `Recipient` carries
the few values that differ per copy. Transports turn the pair into MIME bytes (outbox,
SMTP: see newsletter.mail.mime) or into a provider's batch API call (per-recipient values).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

from newsletter.mail.failures import Cause
from newsletter.render.slots import SlottedText
from newsletter.settings import Settings


@dataclass(frozen=True)
class Envelope:
    sender: str                 # "Name <address>", NEWSLETTER_FROM
    subject: str
    html: SlottedText
    text: SlottedText
    list_id: str                # RFC 2919
    reply_to: str | None = None
    # Extra fixed headers (e.g. X-Entity-Ref-ID); never per-recipient values.
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, subject: str, html: SlottedText,
                      text: SlottedText) -> Envelope:
        """Sender, List-Id and Reply-To as NEWSLETTER_* set them."""
        return cls(sender=settings.sender, subject=subject, html=html, text=text,
                   list_id=settings.list_id, reply_to=settings.reply_to)


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None
    # A value for every slot in the envelope's html and text (see newsletter.render.slots.SLOTS);
    # values["unsubscribe_url"] is also the List-Unsubscribe target.
    values: dict[str, str]
    delivery_id: int | None = None
    # A delivery's own id comes from the ledger (the same on every retry); a test send's
    # is random.
    message_id: str = field(default_factory=lambda: f"<{uuid.uuid4().hex}@daily-spin>")


Status = Literal["sent", "queued", "failed"]


@dataclass(frozen=True)
class Result:
    """The fate of one recipient in one send_batch call.

    sent/queued: the provider took it. failed: it did not, and `cause` says who the
    refusal is about (newsletter.mail.failures.Cause), which decides what happens next:
    retried, parked `unknown`, failed (and the address suppressed), or the run stopped.
    """

    recipient: Recipient
    status: Status
    provider_id: str | None = None
    error: str | None = None
    cause: Cause | None = None

    def __post_init__(self) -> None:
        if (self.cause is None) != self.delivered:
            raise ValueError(f"a {self.status} result must {'not ' * self.delivered}have a cause")

    @property
    def delivered(self) -> bool:
        return self.status in ("sent", "queued")

    @property
    def transient(self) -> bool:
        return self.cause is Cause.TRANSIENT

    @property
    def ambiguous(self) -> bool:
        # The message left and no answer came back: it may have been accepted. Never
        # retried silently; the ledger parks it as `unknown` (docs/ARCHITECTURE.md).
        return self.cause is Cause.AMBIGUOUS
