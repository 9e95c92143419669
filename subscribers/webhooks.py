"""Bounce and complaint webhooks from SendGrid, Mailgun and Postmark, framework-free.

Each provider proves a post is its own in a different way; every check here fails closed.
A provider whose verification setting is not configured is refused (NotConfigured, which
the web app answers with 403 naming the setting): an open endpoint would let anyone
suppress any address. Parsing turns each payload into `Event`s; `apply` suppresses them.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy.orm import Session

from newsletter.errors import NewsletterError, SubscriberError
from newsletter.ledger import bounced
from newsletter.models import SubscriberStatus
from newsletter.suppression import leave_or_suppress
from newsletter.transports.http import DELIVERY_ARG
from subscribers import service

# Mailgun signs only timestamp+token, not the event: a captured signature could be replayed
# with other event data, so old timestamps are refused (Mailgun's guide: "check the
# timestamp is not too far from the current time"). Its retries come within this window.
MAILGUN_MAX_AGE = 8 * 3600 + 600


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
    # The delivery id our request carried for this copy (DELIVERY_ARG), when it came back.
    delivery_id: object = None


def verify_sendgrid(public_key: str | None, signature: str | None, timestamp: str | None,
                    body: bytes) -> None:
    """SendGrid Signed Event Webhook: ECDSA (P-256, SHA-256) over timestamp + raw body."""
    if not public_key:
        raise NotConfigured("set NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY to accept SendGrid events")
    if not signature or not timestamp:
        raise WebhookRefused("missing X-Twilio-Email-Event-Webhook-Signature or -Timestamp")
    try:
        key = _ec_key(public_key)
        key.verify(base64.b64decode(signature), timestamp.encode() + body,
                   ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, binascii.Error, ValueError):
        raise WebhookRefused("SendGrid signature does not verify") from None


def _ec_key(public_key: str) -> ec.EllipticCurvePublicKey:
    # SendGrid shows the key as base64 DER; a PEM copy is accepted too.
    if "BEGIN PUBLIC KEY" in public_key:
        key = serialization.load_pem_public_key(public_key.encode())
    else:
        key = serialization.load_der_public_key(base64.b64decode(public_key))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve key")
    return key


def verify_mailgun(signing_key: str | None, payload: Mapping, now: float | None = None,
                   seen: dict[str, float] | None = None) -> None:
    """Mailgun: HMAC-SHA256 of timestamp + token with the webhook signing key. The
    signature does not cover the event, so a token is accepted once (`seen`: token ->
    when, this process's memory) within the age limit: a captured post cannot be replayed
    with other event data."""
    if not signing_key:
        raise NotConfigured("set NEWSLETTER_MAILGUN_WEBHOOK_SIGNING_KEY to accept Mailgun events")
    sig = payload.get("signature")
    if not isinstance(sig, Mapping) or not all(
            isinstance(sig.get(k), str) for k in ("timestamp", "token", "signature")):
        raise WebhookRefused("missing Mailgun signature")
    expected = hmac.new(signing_key.encode(), (sig["timestamp"] + sig["token"]).encode(),
                        hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, sig["signature"]):
        raise WebhookRefused("Mailgun signature does not verify")
    try:
        age = (now or time.time()) - float(sig["timestamp"])
    except ValueError:
        raise WebhookRefused("Mailgun timestamp is not a number") from None
    if not -300 <= age <= MAILGUN_MAX_AGE:
        raise WebhookRefused("Mailgun timestamp is too old or in the future")
    if seen is not None:
        _once(seen, sig["token"], now or time.time())


def _once(seen: dict[str, float], token: str, now: float) -> None:
    if token in seen:
        raise WebhookRefused("this Mailgun token was already used (a replayed post)")
    if len(seen) > 100_000:  # bound memory: tokens past the age limit are refused anyway
        for old in [t for t, at in seen.items() if at < now - MAILGUN_MAX_AGE]:
            del seen[old]
    seen[token] = now


def verify_postmark(username: str | None, password: str | None,
                    authorization: str | None) -> None:
    """Postmark: HTTP basic auth credentials written into the webhook URL."""
    if not username or not password:
        raise NotConfigured("set NEWSLETTER_POSTMARK_WEBHOOK_USERNAME and _PASSWORD to accept "
                            "Postmark events")
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    if not hmac.compare_digest(expected.encode(), (authorization or "").encode()):
        raise WebhookRefused("Postmark credentials do not match")


def parse_sendgrid(body: bytes) -> Iterator[Event]:
    for item in _json(body, list):
        kind = item.get("event")
        # A "blocked" bounce is temporary (SendGrid: type blocked vs bounce): not suppressed.
        if kind == "bounce" and item.get("type", "bounce") == "bounce" or kind == "dropped":
            yield Event(item.get("email", ""), SubscriberStatus.BOUNCED,
                        f"sendgrid {kind}: {item.get('reason', '')}".strip(),
                        item.get(DELIVERY_ARG))
        elif kind == "spamreport":
            yield Event(item.get("email", ""), SubscriberStatus.COMPLAINED, "sendgrid spamreport",
                        item.get(DELIVERY_ARG))


def parse_mailgun(payload: Mapping) -> Iterator[Event]:
    data = payload.get("event-data")
    if not isinstance(data, Mapping):
        raise WebhookRefused("no event-data in the Mailgun payload")
    kind, email = data.get("event"), data.get("recipient", "")
    variables = data.get("user-variables")
    delivery = variables.get(DELIVERY_ARG) if isinstance(variables, Mapping) else None
    if kind == "failed" and data.get("severity") == "permanent":
        status = data.get("delivery-status")
        reason = (status.get("description") if isinstance(status, Mapping) else None) \
            or data.get("reason", "")
        yield Event(email, SubscriberStatus.BOUNCED, f"mailgun failed: {reason}".strip(),
                    delivery)
    elif kind == "complained":
        yield Event(email, SubscriberStatus.COMPLAINED, "mailgun complained", delivery)


# Postmark bounce types that mean the address is gone for good (soft bounces pass).
POSTMARK_HARD = {"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "Blocked"}


def parse_postmark(payload: Mapping) -> Iterator[Event]:
    kind, email = payload.get("RecordType"), payload.get("Email", "")
    metadata = payload.get("Metadata")
    delivery = metadata.get(DELIVERY_ARG) if isinstance(metadata, Mapping) else None
    if kind == "Bounce" and (payload.get("Type") in POSTMARK_HARD or payload.get("Inactive")):
        yield Event(email, SubscriberStatus.BOUNCED,
                    f"postmark {payload.get('Type')}: {payload.get('Description', '')}",
                    delivery)
    elif kind == "SpamComplaint":
        yield Event(email, SubscriberStatus.COMPLAINED, "postmark SpamComplaint", delivery)


def load_json(body: bytes) -> Mapping:
    return _json(body, dict)


def _json(body: bytes, shape: type) -> list | dict:
    try:
        value = json.loads(body)
    except ValueError:
        raise WebhookRefused("the body is not JSON") from None
    if not isinstance(value, shape):
        raise WebhookRefused(f"expected a JSON {shape.__name__}")
    if shape is list and not all(isinstance(item, dict) for item in value):
        raise WebhookRefused("expected a JSON list of objects")
    return value


def apply(session: Session, events: Iterator[Event]) -> int:
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
