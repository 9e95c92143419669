"""What we hold about one person, for the download on their preferences page."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.store.models import Delivery, Edition, Subscriber
from newsletter.store.suppression import suppression


def personal_data(session: Session, person: Subscriber) -> dict:
    blocked = suppression(session, person.email_key)
    deliveries = session.execute(
        select(Edition.date, Delivery.state, Delivery.sent_at)
        .join(Edition, Edition.id == Delivery.edition_id)
        .where(Delivery.subscriber_id == person.id).order_by(Edition.date))
    return {
        "subscriber": {
            "email": person.email, "name": person.name, "status": str(person.status),
            "source": person.source, "consent_ip": person.consent_ip,
            "created_at": _iso(person.created_at), "confirmed_at": _iso(person.confirmed_at),
            "status_changed_at": _iso(person.status_changed_at),
            "paused_until": _iso(person.paused_until),
        },
        "suppression": None if blocked is None else {
            "reason": str(blocked.reason), "detail": blocked.detail,
            "created_at": _iso(blocked.created_at)},
        "deliveries": [{"edition": _iso(date), "state": str(state), "sent_at": _iso(sent)}
                       for date, state, sent in deliveries],
    }


def _iso(value: dt.date | None) -> str | None:
    return value.isoformat() if value is not None else None
