"""SendGrid v3 Mail Send: POST /v3/mail/send, Bearer key, up to 1,000 personalizations.

Docs: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send. A 202 with
an empty body and X-Message-Id means queued; per-recipient values go in each
personalization's `substitutions` (random tags, see Tags) and its own List-Unsubscribe
header (personalization `headers`).

Its Event Webhook posts a JSON list of events, signed with ECDSA: `bounce` (type bounce, not
the temporary "blocked"), `dropped` and `spamreport` suppress the address.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator, Mapping, Sequence
from email.utils import parseaddr
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.mail.mime import one_line
from newsletter.providers.http import DELIVERY_ARG, HttpTransport, Tags
from newsletter.providers.webhooks import (
    Event,
    NotConfigured,
    Webhook,
    WebhookRefused,
    check_fresh,
    json_body,
)
from newsletter.settings import Settings
from newsletter.store.models import SubscriberStatus


def _party(name: str | None, address: str) -> dict[str, str]:
    party = {"email": address}
    if name and one_line(name):
        party["name"] = one_line(name)
    return party


class SendGridTransport(HttpTransport):
    name = "sendgrid"
    max_batch = 1000
    public_url = "https://api.sendgrid.com"

    def payload(self, envelope: Envelope, recipients: Sequence[Recipient]) -> dict[str, Any]:
        tags = Tags(envelope, lambda name: f"-{name}-")
        headers = {"List-Id": one_line(envelope.list_id),
                   "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                   **{name: one_line(value) for name, value in envelope.headers}}
        payload: dict[str, Any] = {
            "personalizations": [{
                "to": [_party(r.name, r.email)],
                "substitutions": tags.values(r, formed=True),
                "headers": {"List-Unsubscribe": f"<{r.values['unsubscribe_url']}>"},
                # Comes back on every event of this copy: webhooks find the delivery.
                "custom_args": {DELIVERY_ARG: str(r.delivery_id)},
            } for r in recipients],
            "from": _party(*parseaddr(one_line(envelope.sender))),
            "subject": one_line(envelope.subject),
            "content": [{"type": "text/plain", "value": tags.template(envelope.text)},
                        {"type": "text/html", "value": tags.template(envelope.html, html=True)}],
            "headers": headers,
        }
        if envelope.reply_to:
            payload["reply_to"] = _party(*parseaddr(envelope.reply_to))
        return payload

    def send_call(self, envelope: Envelope, recipients: Sequence[Recipient]) -> list[Result]:
        response = self.post("/v3/mail/send", json=self.payload(envelope, recipients),
                             headers={"Authorization": f"Bearer {self.api_key}"})
        message_id = response.headers.get("X-Message-Id")
        return [Result(r, "queued", provider_id=message_id) for r in recipients]


# Event webhook: https://www.twilio.com/docs/sendgrid/for-developers/tracking-events/getting-started-event-webhook-security-features
def read_webhook(settings: Settings, headers: Mapping[str, str], body: bytes) -> Webhook:
    verify_sendgrid(settings.sendgrid_webhook_public_key,
                    headers.get("X-Twilio-Email-Event-Webhook-Signature"),
                    headers.get("X-Twilio-Email-Event-Webhook-Timestamp"), body)
    # The signature covers the whole body: a replay within the age limit only repeats
    # the same (idempotent) suppressions, so no replay key is kept.
    return Webhook("sendgrid", list(parse_sendgrid(body)))


def verify_sendgrid(public_key: str | None, signature: str | None, timestamp: str | None,
                    body: bytes, now: float | None = None) -> None:
    """SendGrid Signed Event Webhook: ECDSA (P-256, SHA-256) over timestamp + raw body;
    the signed timestamp must be fresh (check_fresh)."""
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
    check_fresh("SendGrid", timestamp, now)


def _ec_key(public_key: str) -> ec.EllipticCurvePublicKey:
    # SendGrid shows the key as base64 DER; a PEM copy is accepted too.
    if "BEGIN PUBLIC KEY" in public_key:
        key = serialization.load_pem_public_key(public_key.encode())
    else:
        key = serialization.load_der_public_key(base64.b64decode(public_key))
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve key")
    return key


def parse_sendgrid(body: bytes) -> Iterator[Event]:
    for item in json_body(body, list):
        kind = item.get("event")
        # A "blocked" bounce is temporary (SendGrid: type blocked vs bounce): not suppressed.
        if kind == "bounce" and item.get("type", "bounce") == "bounce" or kind == "dropped":
            yield Event(item.get("email", ""), SubscriberStatus.BOUNCED,
                        f"sendgrid {kind}: {item.get('reason', '')}".strip(),
                        item.get(DELIVERY_ARG))
        elif kind == "spamreport":
            yield Event(item.get("email", ""), SubscriberStatus.COMPLAINED, "sendgrid spamreport",
                        item.get(DELIVERY_ARG))
