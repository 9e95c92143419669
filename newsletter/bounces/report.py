"""What came back by mail for one edition, for `newsletter status`: hard bounces are also
failed deliveries (their answer is the delivery's error, listed by `status --failures` with
the refusals at send time); soft and refused ones and complaints leave the delivery `sent`,
so `status --failures` lists them from here. Core statements, so `status` loads no ORM."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select

from newsletter.store.tables import BounceKind, bounces, deliveries, subscribers

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

BESIDE_FAILURES = (BounceKind.SOFT, BounceKind.REFUSED, BounceKind.COMPLAINT)


@dataclass(frozen=True)
class Later:
    email: str
    kind: str
    status: str | None
    detail: str | None
    at: dt.datetime


def counts(db: Connection | Session, edition_id: int) -> dict[str, int]:
    """Addresses by kind of message that came back about this edition's copies."""
    bounce = bounces.c
    rows = db.execute(
        select(bounce.kind, func.count(func.distinct(bounce.email_key)))
        .join(deliveries, deliveries.c.id == bounce.delivery_id)
        .where(deliveries.c.edition_id == edition_id).group_by(bounce.kind)).all()
    found = {kind: number for kind, number in rows}
    return {kind.value: found[kind] for kind in BounceKind if kind in found}


def later(db: Connection | Session, edition_id: int) -> list[Later]:
    """Soft bounces, refusals and complaints about this edition's copies, oldest first."""
    bounce, delivery = bounces.c, deliveries.c
    rows = db.execute(
        select(subscribers.c.email, bounce.kind, bounce.status, bounce.detail,
               bounce.received_at)
        .select_from(bounces)
        .join(deliveries, delivery.id == bounce.delivery_id)
        .join(subscribers, subscribers.c.id == delivery.subscriber_id)
        .where(delivery.edition_id == edition_id, bounce.kind.in_(BESIDE_FAILURES))
        .order_by(bounce.received_at, bounce.id))
    return [Later(email, BounceKind(kind).value, status, detail, at)
            for email, kind, status, detail, at in rows]
