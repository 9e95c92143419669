"""Sign-up with double opt-in: a pending subscriber, a queued confirmation email, a link
whose page asks for one press of a button (POST) before anything changes.

A sign-up does the same work whatever the address (new, pending, confirmed, suppressed):
one upsert of the subscriber row and one row in the mail queue, in one transaction. The
page and its timing therefore say nothing about who is subscribed; the drainer decides
later whether the email still has a reason to go (newsletter.delivery.mail_drain).
A person who left (unsubscribed, bounced, erased) stays as they are until they confirm a
link made after they left; a complaint is never lifted by confirming.
"""

from __future__ import annotations

from sqlalchemy import case, literal
from sqlalchemy.orm import Session

from newsletter.mail.links import BadToken, Links
from newsletter.store import mail_queue
from newsletter.store.db import insert_for
from newsletter.store.models import Subscriber, SubscriberStatus, utcnow
from subscribers import service


def request(session: Session, email: str, name: str | None, *, ip: str | None) -> None:
    """Record a sign-up and queue its confirmation email."""
    address = service.parse_address(email)
    name = service.clean_name(name)
    mail_queue.enqueue(session, mail_queue.CONFIRM, _upsert_pending(session, address, name, ip),
                       name)


def _upsert_pending(session: Session, address: service.Address, name: str | None,
                    ip: str | None) -> int:
    """One statement whatever the address: a new one becomes a pending subscriber; a
    pending one's clock restarts (housekeeping gives the new link its full week); anyone
    else stays exactly as they are. The name waits in the queued request until its link
    is confirmed, so a stranger cannot rename a known address."""
    now = utcnow()
    insert = insert_for(session.get_bind().dialect.name)
    statement = insert(Subscriber).values(
        email=address.email, email_key=address.key, name=name, source="web", consent_ip=ip,
        status=SubscriberStatus.PENDING, created_at=now, status_changed_at=now)
    # literal(..., type_) so the UTC column type stores `now` as every other write does.
    restarted = case((Subscriber.status == SubscriberStatus.PENDING,
                      literal(now, Subscriber.status_changed_at.type)),
                     else_=Subscriber.status_changed_at)
    return session.execute(statement.on_conflict_do_update(
        index_elements=["email_key"], set_={"status_changed_at": restarted})
        .returning(Subscriber.id)).scalar_one()


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
