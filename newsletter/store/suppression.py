"""The suppression list: addresses never to be mailed again, whatever else changes.

Core, not subscribers/, because sending writes to it too (hard bounces) and imports point
down only.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.errors import SubscriberError
from newsletter.store.db import insert_for
from newsletter.store.models import (
    Subscriber,
    SubscriberStatus,
    Suppression,
    SuppressionChange,
    SuppressionReason,
    utcnow,
)

# What each way of leaving writes to the suppression list.
SUPPRESS_FOR = {
    SubscriberStatus.UNSUBSCRIBED: SuppressionReason.UNSUBSCRIBED,
    SubscriberStatus.BOUNCED: SuppressionReason.BOUNCED,
    SubscriberStatus.COMPLAINED: SuppressionReason.COMPLAINED,
}


def suppression(session: Session, key: str) -> Suppression | None:
    return session.scalar(select(Suppression).where(Suppression.email_key == key.lower()))


def suppress(session: Session, key: str, reason: SuppressionReason,
             detail: str | None = None) -> None:
    """Insert-or-nothing: two suppressions of one address at once (two webhooks, a webhook
    and a sender) both succeed, the first reason stays, and no IntegrityError can undo the
    caller's transaction."""
    insert = insert_for(session.get_bind().dialect.name)
    session.execute(insert(Suppression).values(
        email_key=key.lower(), reason=reason, detail=detail, created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["email_key"]))


def leave_or_suppress(session: Session, email_key: str, status: SubscriberStatus,
                      detail: str | None = None) -> None:
    """A bounce or complaint for an address: the subscriber leaves if we have them, and
    the address is suppressed either way (it must never be mailed)."""
    person = session.scalar(select(Subscriber).where(Subscriber.email_key == email_key))
    if person is not None:
        leave(session, person, status, detail)
    else:
        suppress(session, email_key, SUPPRESS_FOR[status], detail)


def leave(session: Session, person: Subscriber, status: SubscriberStatus,
          detail: str | None = None) -> None:
    """Unsubscribe, bounce or complaint: change the status and suppress the address.
    Idempotent: a second one-click POST or a repeated webhook changes nothing more."""
    if person.status != status:
        person.status, person.status_changed_at = status, utcnow()
    suppress(session, person.email_key, SUPPRESS_FOR[status], detail)


# What an operator may lift: what a server or a provider said about the address. Leaving
# (unsubscribe) and erasure are the person's own choice, undone only by the person.
LIFTABLE = {SuppressionReason.BOUNCED, SuppressionReason.COMPLAINED}


def unsuppress(session: Session, key: str, by: str) -> SuppressionChange:
    """Lift a bounce or complaint suppression (a relay that refused everyone, a fixed
    mailbox): the subscriber, if we still have them, is confirmed again. Logged."""
    row = suppression(session, key)
    if row is None:
        raise SubscriberError(f"{key} is not suppressed")
    if row.reason not in LIFTABLE:
        why = ("they unsubscribed themselves: only they can come back, by signing up again"
               if row.reason == SuppressionReason.UNSUBSCRIBED
               else "they asked to be erased: only they can come back, by signing up again")
        raise SubscriberError(f"{key} cannot be unsuppressed by an operator: {why}")
    change = SuppressionChange(email_key=row.email_key, action="lifted", reason=row.reason.value,
                               detail=row.detail, by=by)
    session.add(change)
    session.delete(row)
    person = session.scalar(select(Subscriber).where(Subscriber.email_key == row.email_key))
    if person is not None and person.status in (SubscriberStatus.BOUNCED,
                                                SubscriberStatus.COMPLAINED):
        person.status, person.status_changed_at = SubscriberStatus.CONFIRMED, utcnow()
    session.flush()
    return change
