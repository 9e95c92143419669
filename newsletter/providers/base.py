"""The one small interface every transport implements (Django's mail backends style).

A transport is opened once per worker, takes batches of recipients of one Envelope and
answers one Result per recipient, in order. It raises only when the whole call failed
(TransportError; AuthRefused when the provider refused our credentials).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from types import TracebackType
from typing import ClassVar, Self

from newsletter.mail.failures import Cause
from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.mail.mime import AddressError, HeaderError, MimeBuilder
from newsletter.settings import Settings


class Transport(ABC):
    name: ClassVar[str]
    max_batch: ClassVar[int]  # recipients per send_batch call: the provider's limit

    def __init__(self, settings: Settings):
        self.settings = settings

    def open(self) -> None:  # noqa: B027 - most transports have nothing to set up
        """Connect or set up; sending opens lazily too, so this only fails early."""

    def close(self) -> None:  # noqa: B027
        """Release connections; safe to call twice."""

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()

    @abstractmethod
    def send_batch(self, envelope: Envelope, recipients: Sequence[Recipient]) -> list[Result]:
        """Send one copy of `envelope` to each recipient; one Result per recipient."""

    def check_batch(self, recipients: Sequence[Recipient]) -> None:
        # Splitting here would hide a crash window inside one call: the caller sizes batches.
        if len(recipients) > self.max_batch:
            raise ValueError(f"{self.name} takes at most {self.max_batch} recipients a call, "
                             f"got {len(recipients)}")


class MimeTransport(Transport):
    """A transport that hands over whole MIME messages (outbox, SMTP); the HTTP APIs take
    the parts instead and build nothing."""

    def __init__(self, settings: Settings):
        super().__init__(settings)
        self._builder: MimeBuilder | None = None

    def builder(self, envelope: Envelope) -> MimeBuilder:
        """The MIME builder for `envelope`, kept across batches: pre-encoding a 100 KB
        edition takes milliseconds, each copy after that microseconds."""
        if self._builder is None or self._builder.envelope is not envelope:
            self._builder = MimeBuilder(envelope)
        return self._builder


def unsendable(recipient: Recipient, err: HeaderError) -> Result:
    """A copy that cannot be written: the reader's address (fail that copy, nobody is
    suppressed: no server said it is dead), or one of our values such as a non-ASCII
    unsubscribe URL (configuration: the run stops before it fails everyone)."""
    cause = Cause.RECIPIENT if isinstance(err, AddressError) else Cause.CONFIG
    return Result(recipient, "failed", error=str(err), cause=cause)


def unique_runs(recipients: Sequence[Recipient]) -> Iterator[Sequence[Recipient]]:
    """Consecutive runs in which no address repeats (case-insensitively): SendGrid refuses
    an address twice in one call, and Mailgun's recipient-variables are keyed by address."""
    start, seen = 0, set()
    for index, recipient in enumerate(recipients):
        key = recipient.email.lower()
        if key in seen:
            yield recipients[start:index]
            start, seen = index, set()
        seen.add(key)
    if start < len(recipients):
        yield recipients[start:]
