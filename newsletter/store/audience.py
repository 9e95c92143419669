"""Who gets the edition of a date: a condition on subscribers, shared by the freeze (one
delivery row each) and by every claim (anyone who left since is skipped, not mailed)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, and_, exists, or_

from newsletter.store.models import Subscriber, SubscriberStatus, Suppression


def audience(date: dt.date) -> ColumnElement[bool]:
    """Confirmed, not suppressed, not paused that day."""
    return and_(
        Subscriber.status == SubscriberStatus.CONFIRMED,
        or_(Subscriber.paused_until.is_(None), Subscriber.paused_until < date),
        ~exists().where(Suppression.email_key == Subscriber.email_key),
    )
