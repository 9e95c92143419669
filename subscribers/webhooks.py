"""Applying the bounce and complaint events the providers parsed (newsletter.providers:
each provider's module verifies its own webhook posts into a `Webhook`)."""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from newsletter.delivery.ledger import bounced
from newsletter.errors import SubscriberError
from newsletter.providers.webhooks import Webhook, WebhookRefused
from newsletter.store.models import SubscriberStatus, WebhookReplay
from newsletter.store.suppression import leave_or_suppress
from subscribers import service


def apply(session: Session, webhook: Webhook) -> int:
    """Suppress each event's address with its reason; returns how many were valid.
    An address we never had (or erased) is still suppressed: it must never be mailed.
    A hard bounce that names its delivery also marks that copy failed (the provider had
    accepted it), so `status --failures` shows it beside the refusals at send time.

    A replay key is inserted first, in the same transaction as the effect: the unique
    constraint refuses a second copy on any worker or host (on PostgreSQL a concurrent
    copy waits for the first to commit, then fails), and if the effect fails the key goes
    with it, so the provider's retry is still accepted. The caller commits."""
    if webhook.replay_key is not None:
        try:
            with session.begin_nested():
                session.add(WebhookReplay(provider=webhook.provider, key=webhook.replay_key))
        except IntegrityError:
            raise WebhookRefused(f"this {webhook.provider} post was already received (a "
                                 "replayed post)") from None
    count = 0
    for event in webhook.events:
        try:
            address = service.parse_address(str(event.email))
        except SubscriberError:
            continue  # a provider event for a malformed address: nothing to suppress
        leave_or_suppress(session, address.key, event.status, event.detail)
        if event.status == SubscriberStatus.BOUNCED:
            bounced(session, event.delivery_id, address.key, event.detail)
        count += 1
    return count
