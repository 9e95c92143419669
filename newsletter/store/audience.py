"""Who gets the edition of a date: a condition on subscribers, shared by the freeze (one
delivery row each) and by every claim (anyone who left since is skipped, not mailed)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import ColumnElement, and_, exists, or_

from newsletter.store.tables import SubscriberStatus, subscribers, suppressions


def audience(date: dt.date) -> ColumnElement[bool]:
    """Confirmed, not suppressed, not paused that day."""
    person = subscribers.c
    return and_(
        person.status == SubscriberStatus.CONFIRMED,
        or_(person.paused_until.is_(None), person.paused_until < date),
        ~exists().where(suppressions.c.email_key == person.email_key),
    )
