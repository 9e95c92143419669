"""Applying the bounce and complaint events the providers parsed (newsletter.providers:
each provider's module verifies its own webhook posts and yields `Event`s)."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy.orm import Session

from newsletter.delivery.ledger import bounced
from newsletter.errors import SubscriberError
from newsletter.providers.webhooks import Event
from newsletter.store.models import SubscriberStatus
from newsletter.store.suppression import leave_or_suppress
from subscribers import service


def apply(session: Session, events: Iterable[Event]) -> int:
    """Suppress each event's address with its reason; returns how many were valid.
    An address we never had (or erased) is still suppressed: it must never be mailed.
    A hard bounce that names its delivery also marks that copy failed (the provider had
    accepted it), so `status --failures` shows it beside the refusals at send time."""
    count = 0
    for event in events:
        try:
            address = service.parse_address(str(event.email))
        except SubscriberError:
            continue  # a provider event for a malformed address: nothing to suppress
        leave_or_suppress(session, address.key, event.status, event.detail)
        if event.status == SubscriberStatus.BOUNCED:
            bounced(session, event.delivery_id, address.key, event.detail)
        count += 1
    return count
