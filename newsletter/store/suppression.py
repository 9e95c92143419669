"""The suppression list: addresses never to be mailed again, whatever else changes.

Core, not subscribers/, because sending writes to it too (hard bounces) and imports point
down only.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.store.models import (
    Subscriber,
    SubscriberStatus,
    Suppression,
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
    if suppression(session, key) is None:
        session.add(Suppression(email_key=key.lower(), reason=reason, detail=detail))
        session.flush()


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
