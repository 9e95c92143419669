"""What every provider's webhook shares: the event it yields and the ways a post is refused.

Each provider proves a post is its own in a different way (its module verifies and parses
it); every check fails closed. A provider whose verification setting is not configured is
refused (NotConfigured, which the web app answers with 403 naming the setting): an open
endpoint would let anyone suppress any address. subscribers.webhooks applies the events.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
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


# read_webhook(settings, headers, body, seen) in each ESP module: verify, then the events.
# `seen` is the process's replay guard (token -> when), for providers that need one.
ReadWebhook = Callable[[Settings, Mapping[str, str], bytes, dict[str, float]], Iterator[Event]]


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
