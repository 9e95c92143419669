"""What came back by mail for one edition, for `newsletter status`: hard bounces are also
failed deliveries (with the answer as their error), soft and refused ones and complaints
are only here."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.store.models import Bounce, BounceKind, Delivery


def counts(session: Session, edition_id: int) -> dict[str, int]:
    """Addresses by kind of message that came back about this edition's copies."""
    rows = session.execute(
        select(Bounce.kind, func.count(func.distinct(Bounce.email_key)))
        .join(Delivery, Delivery.id == Bounce.delivery_id)
        .where(Delivery.edition_id == edition_id).group_by(Bounce.kind)).all()
    found = {kind: number for kind, number in rows}
    return {kind.value: found[kind] for kind in BounceKind if kind in found}
