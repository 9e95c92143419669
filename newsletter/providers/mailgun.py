"""Mailgun: POST /v3/DOMAIN/messages (form), Basic auth api:KEY, up to 1,000 recipients.

Docs: https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/batch-sending.
Each `to` gets its own copy when `recipient-variables` is present; values are referenced as
%recipient.NAME%, with random NAMEs (see Tags), also inside the List-Unsubscribe header.
A 200 whose body says "Mailgun Magnificent API" is Mailgun's answer to a wrong URL.

Its webhooks post one event as JSON, signed with HMAC over a timestamp and a token only:
`failed` (permanent) and `complained` suppress the address.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote

from newsletter.errors import ConfigError, TransportError
from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.mail.mime import encode_address, mailbox, one_line
from newsletter.providers.http import DELIVERY_ARG, KEPT, HttpTransport, Tags
from newsletter.providers.webhooks import (
    Event,
    NotConfigured,
    Webhook,
    WebhookRefused,
    check_fresh,
    load_json,
)
from newsletter.settings import Settings
from newsletter.store.models import SubscriberStatus


class MailgunTransport(HttpTransport):
    name = "mailgun"
    max_batch = 1000
    public_url = "https://api.mailgun.net"

    def __init__(self, settings: Settings, **retry: Any):
        super().__init__(settings, **retry)
        domain = settings.mailgun_domain
        if not domain:
            raise ConfigError("NEWSLETTER_MAILGUN_DOMAIN is not set: the mailgun transport "
                              "needs the sending domain")
        if "/" in domain or "%" in domain:  # would point at another API path
            raise ConfigError(f"NEWSLETTER_MAILGUN_DOMAIN: not a domain name: {domain!r}")
        self.path = f"/v3/{quote(domain, safe='')}/messages"

    def form(self, envelope: Envelope, recipients: Sequence[Recipient]) -> list[tuple[str, str]]:
        tags = Tags(envelope, lambda name: f"%recipient.{name}%")
        form = [("from", one_line(envelope.sender)),
                ("subject", one_line(envelope.subject)),
                ("text", tags.template(envelope.text)),
                ("html", tags.template(envelope.html, html=True)),
                ("h:List-Id", one_line(envelope.list_id)),
                ("h:List-Unsubscribe", f"<{tags.tag('unsubscribe_url')}>"),
                ("h:List-Unsubscribe-Post", "List-Unsubscribe=One-Click")]
        if envelope.reply_to:
            form.append(("h:Reply-To", one_line(envelope.reply_to)))
        form += [(f"h:{name}", one_line(value)) for name, value in envelope.headers]
        form += [("to", mailbox(r.name, r.email)) for r in recipients]
        # Each copy's delivery id, as a user variable that comes back in webhooks.
        delivery = tags.extra("delivery")
        form.append((f"v:{DELIVERY_ARG}", f"%recipient.{delivery}%"))
        variables = {encode_address(r.email): {**tags.values(r), delivery: str(r.delivery_id)}
                     for r in recipients}
        form.append(("recipient-variables", json.dumps(variables)))
        return form

    def send_call(self, envelope: Envelope, recipients: Sequence[Recipient]) -> list[Result]:
        response = self.post(self.path, data=self.form(envelope, recipients),
                             auth=("api", self.api_key))
        if "Mailgun Magnificent API" in response.text:
            raise TransportError(f"mailgun: {response.url} is not the messages API: check "
                                 "NEWSLETTER_MAILGUN_DOMAIN and NEWSLETTER_ESP_API_URL",
                                 status=response.status_code, body=response.text[:KEPT])
        answer = self.json_body(response)
        if not isinstance(answer, dict) or not isinstance(answer.get("id"), str):
            raise self.unexpected(response, "without a message id")
        return [Result(r, "queued", provider_id=answer["id"]) for r in recipients]


# Webhooks: https://documentation.mailgun.com/docs/mailgun/user-manual/events/webhooks
def read_webhook(settings: Settings, headers: Mapping[str, str], body: bytes) -> Webhook:
    key = settings.mailgun_webhook_signing_key
    payload = load_json(body) if key else {}  # not configured: 403 before reading the body
    token = verify_mailgun(key, payload)
    return Webhook("mailgun", list(parse_mailgun(payload)), replay_key=token)


def verify_mailgun(signing_key: str | None, payload: Mapping, now: float | None = None) -> str:
    """Mailgun: HMAC-SHA256 of timestamp + token with the webhook signing key; returns the
    token. The signature does not cover the event, so a captured signature could be sent
    again with other event data: the timestamp must be fresh (check_fresh; Mailgun's guide:
    "check the timestamp is not too far from the current time") and the token is accepted
    once (the caller stores it in the database, subscribers.webhooks)."""
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
    check_fresh("Mailgun", sig["timestamp"], now)
    if not 0 < len(sig["token"]) <= 200:
        raise WebhookRefused("Mailgun token has an unexpected length")
    return sig["token"]


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
