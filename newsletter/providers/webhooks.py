"""What every provider's webhook shares: the event it yields and the ways a post is refused.

Each provider proves a post is its own in a different way (its module verifies and parses
it); every check fails closed. A provider whose verification setting is not configured is
refused (NotConfigured, which the web app answers with 403 naming the setting): an open
endpoint would let anyone suppress any address. subscribers.webhooks applies the events.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from newsletter.errors import NewsletterError
from newsletter.settings import Settings
from newsletter.store.models import SubscriberStatus


class WebhookRefused(NewsletterError):
    """The post is not verifiably from the provider (answered with `status`)."""

    status = 401


class NotConfigured(WebhookRefused):
    status = 403


@dataclass(frozen=True)
class Event:
    email: str
    status: SubscriberStatus  # BOUNCED or COMPLAINED
    detail: str
    # The delivery id our request carried for this copy (http.DELIVERY_ARG), when it came
    # back.
    delivery_id: object = None


@dataclass(frozen=True)
class Webhook:
    """A verified post: its events and, for a provider whose signature does not cover the
    events (Mailgun), the key that must never be accepted twice. subscribers.webhooks
    stores the key in the transaction that applies the events."""

    provider: str
    events: Iterable[Event]
    replay_key: str | None = None


# read_webhook(settings, headers, body) in each ESP module: verify, then the Webhook.
ReadWebhook = Callable[[Settings, Mapping[str, str], bytes], Webhook]

# A signed timestamp older than this, or from the future, is refused: a captured post
# cannot be replayed later (SendGrid and Mailgun both advise checking it). A few seconds
# ahead are allowed for clocks that differ.
MAX_AGE_SECONDS = 300
CLOCK_SKEW_SECONDS = 5


def check_fresh(provider: str, timestamp: str | None, now: float | None = None) -> None:
    try:
        age = (time.time() if now is None else now) - float(timestamp or "")
    except ValueError:
        raise WebhookRefused(f"{provider} timestamp is not a number") from None
    if age > MAX_AGE_SECONDS:
        raise WebhookRefused(f"{provider} timestamp is more than {MAX_AGE_SECONDS // 60} "
                             "minutes old")
    if age < -CLOCK_SKEW_SECONDS:
        raise WebhookRefused(f"{provider} timestamp is in the future")


def load_json(body: bytes) -> Mapping:
    return json_body(body, dict)


def json_body(body: bytes, shape: type) -> list | dict:
    try:
        value = json.loads(body)
    except ValueError:
        raise WebhookRefused("the body is not JSON") from None
    if not isinstance(value, shape):
        raise WebhookRefused(f"expected a JSON {shape.__name__}")
    if shape is list and not all(isinstance(item, dict) for item in value):
        raise WebhookRefused("expected a JSON list of objects")
    return value
