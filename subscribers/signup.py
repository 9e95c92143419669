"""Sign-up with double opt-in: a pending subscriber, a queued confirmation email, a link
whose page asks for one press of a button (POST) before anything changes.

A sign-up does the same work whatever the address (new, pending, confirmed, suppressed):
at most the pending row, and always one row in the mail queue, in one transaction. The
page and its timing therefore say nothing about who is subscribed; the drainer decides
later whether the email still has a reason to go (newsletter.delivery.mail_drain).
A person who left (unsubscribed, bounced, erased) stays as they are until they confirm a
link made after they left; a complaint is never lifted by confirming.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from newsletter.mail.links import BadToken, Links
from newsletter.store import mail_queue
from newsletter.store.models import Subscriber, SubscriberStatus, utcnow
from subscribers import service


def request(session: Session, email: str, name: str | None, *, ip: str | None) -> None:
    """Record a sign-up and queue its confirmation email."""
    address = service.parse_address(email)
    name = service.clean_name(name)
    person = service.find(session, address.email)
    if person is None:
        person = service.add(session, address.email, name, source="web", ip=ip)
    elif person.status == SubscriberStatus.PENDING:
        # The clock restarts with the new link, so housekeeping gives it its full week.
        # The name waits in the queued request until its link is confirmed.
        person.status_changed_at = utcnow()
    mail_queue.enqueue(session, mail_queue.CONFIRM, person.id, name)


def pending_confirmation(session: Session, links: Links, token: str) -> Subscriber:
    """The person a confirmation link is for, checked but unchanged (GET shows this)."""
    subscriber_id, issued, _ = links.read_confirm(token)
    person = session.get(Subscriber, subscriber_id)
    left = person is not None and person.status not in (SubscriberStatus.PENDING,
                                                        SubscriberStatus.CONFIRMED)
    if person is None or left and issued < person.status_changed_at:
        raise BadToken("this confirmation link is no longer valid: please sign up again")
    return person


def confirm(session: Session, links: Links, token: str, *, ip: str | None) -> Subscriber:
    """Follow a confirmation link by POST. Someone who left comes back only through a link
    made after they left; the name given with that sign-up is stored now."""
    person = pending_confirmation(session, links, token)
    subscriber_id, _, request_id = links.read_confirm(token)
    found, name = mail_queue.requested_name(session, request_id, subscriber_id)
    service.confirm(session, person, ip=ip)
    if found and name:
        person.name = name
    return person
