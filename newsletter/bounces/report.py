"""What came back by mail for one edition, for `newsletter status`: hard bounces are also
failed deliveries (their answer is the delivery's error, listed by `status --failures` with
the refusals at send time); soft and refused ones and complaints leave the delivery `sent`,
so `status --failures` lists them from here."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.store.models import Bounce, BounceKind, Delivery, Subscriber

BESIDE_FAILURES = (BounceKind.SOFT, BounceKind.REFUSED, BounceKind.COMPLAINT)


@dataclass(frozen=True)
class Later:
    email: str
    kind: str
    status: str | None
    detail: str | None
    at: dt.datetime


def counts(session: Session, edition_id: int) -> dict[str, int]:
    """Addresses by kind of message that came back about this edition's copies."""
    rows = session.execute(
        select(Bounce.kind, func.count(func.distinct(Bounce.email_key)))
        .join(Delivery, Delivery.id == Bounce.delivery_id)
        .where(Delivery.edition_id == edition_id).group_by(Bounce.kind)).all()
    found = {kind: number for kind, number in rows}
    return {kind.value: found[kind] for kind in BounceKind if kind in found}


def later(session: Session, edition_id: int) -> list[Later]:
    """Soft bounces, refusals and complaints about this edition's copies, oldest first."""
    rows = session.execute(
        select(Subscriber.email, Bounce.kind, Bounce.status, Bounce.detail, Bounce.received_at)
        .join(Delivery, Delivery.id == Bounce.delivery_id)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.edition_id == edition_id, Bounce.kind.in_(BESIDE_FAILURES))
        .order_by(Bounce.received_at, Bounce.id))
    return [Later(email, BounceKind(kind).value, status, detail, at)
            for email, kind, status, detail, at in rows]
