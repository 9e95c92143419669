"""Sign-up with double opt-in: a pending subscriber, a confirmation email, a confirm link.

The answer a visitor sees never depends on whether the address is known (no enumeration):
`request` decides quietly whether a confirmation goes out. A person who left (unsubscribed,
bounced, complained, erased) stays suppressed until they follow a fresh confirmation link.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy.orm import Session

from newsletter.mail.links import BadToken, Links
from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.providers.base import Transport
from newsletter.render.confirmation import render_confirmation
from newsletter.settings import Settings
from newsletter.store.models import Subscriber, SubscriberStatus, utcnow
from subscribers import service


class RequestLimiter:
    """At most `limit` events per key within `window` seconds (sliding window).

    In memory, per process: with N gunicorn workers a client gets up to N x limit. That is
    enough to stop a script mail-bombing an address through our form; a shared store
    (Redis, the database) would make it exact.
    """

    def __init__(self, limit: int, window: float, clock: Callable[[], float] = time.monotonic):
        self.limit, self.window, self.clock = limit, window, clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: str) -> bool:
        now = self.clock()
        with self._lock:
            if len(self._hits) > 100_000:  # bound memory: forget keys whose window ended
                self._hits = {k: v for k, v in self._hits.items() if v[-1] > now - self.window}
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return False
            hits.append(now)
            return True


def request(session: Session, email: str, name: str | None, *, ip: str | None) -> Subscriber | None:
    """Record a sign-up; returns the person to send a confirmation to, or None when the
    address is already confirmed (nothing to do, and the page says the same)."""
    address = service.parse_address(email)
    name = service.clean_name(name)
    person = service.find(session, address.email)
    if person is None:
        return service.add(session, address.email, name, source="web", ip=ip)
    if person.status == SubscriberStatus.CONFIRMED:
        return None
    if person.status == SubscriberStatus.PENDING:
        # The clock restarts with the new link, so housekeeping gives it its full week.
        person.status_changed_at = utcnow()
        person.name = name or person.name
        person.consent_ip = ip
    # Someone who left stays as they are until the new link is followed: anyone can ask
    # for a confirmation email, but only its owner can change anything.
    return person


def confirm(session: Session, links: Links, token: str, *, ip: str | None) -> Subscriber:
    """Follow a confirmation link. Someone who left comes back only through a link made
    after they left: an old link must not bring them back."""
    subscriber_id, issued = links.read_confirm(token)
    person = session.get(Subscriber, subscriber_id)
    left = person is not None and person.status not in (SubscriberStatus.PENDING,
                                                        SubscriberStatus.CONFIRMED)
    if person is None or left and issued < person.status_changed_at:
        raise BadToken("this confirmation link is no longer valid: please sign up again")
    service.confirm(session, person, ip=ip)
    return person


class Confirmations:
    """The confirmation email, rendered once (Jinja -> MJML -> HTML) and filled per person."""

    def __init__(self, settings: Settings, links: Links):
        self.settings, self.links = settings, links
        self._envelope: Envelope | None = None

    def envelope(self) -> Envelope:
        if self._envelope is None:
            subject, email = render_confirmation(self.settings)
            self._envelope = Envelope.from_settings(self.settings, subject, email.html,
                                                    email.text)
        return self._envelope

    def recipient(self, person: Subscriber) -> Recipient:
        # The unsubscribe link works for a pending person too: "I never asked for this"
        # suppresses the address, so nobody can keep signing it up.
        values = self.links.values(person.id, person.email, self.settings.today())
        values["confirm_url"] = self.links.confirm_url(person.id)
        return Recipient(email=person.email, name=person.name, values=values)

    def send(self, transport: Transport, person: Subscriber) -> Result:
        with transport:
            return transport.send_batch(self.envelope(), [self.recipient(person)])[0]
