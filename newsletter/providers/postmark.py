"""Postmark: POST /email/batch, X-Postmark-Server-Token, up to 500 messages and 50 MB.

Docs: https://postmarkapp.com/developer/api/email-api#send-batch-emails. The 200 answer is
one object per message and some may have failed: ErrorCode 0 is queued, 406 an inactive
(bounced, complained, unsubscribed) recipient, 300 an invalid message or address
(https://postmarkapp.com/developer/api/overview#error-codes). Postmark has no
substitution, so each message carries its own filled-in copy.

Its webhooks post one record as JSON, behind the basic-auth credentials written into the
webhook URL: a hard `Bounce` and a `SpamComplaint` suppress the address.
"""

from __future__ import annotations

import base64
import hmac
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from newsletter.mail.failures import Cause
from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.mail.mime import mailbox, one_line
from newsletter.providers.http import DELIVERY_ARG, HttpTransport
from newsletter.providers.webhooks import (
    Event,
    NotConfigured,
    Webhook,
    WebhookRefused,
    load_json,
)
from newsletter.settings import Settings
from newsletter.store.models import SubscriberStatus

PAYLOAD_LIMIT = 45 * 1024 * 1024  # Postmark's 50 MB per batch, with room for JSON escaping
STREAM = "broadcast"  # Postmark requires bulk mail on a broadcast stream, not transactional


class PostmarkTransport(HttpTransport):
    name = "postmark"
    max_batch = 500
    public_url = "https://api.postmarkapp.com"

    def split(self, envelope: Envelope,
              recipients: Sequence[Recipient]) -> list[Sequence[Recipient]]:
        size = 2 * (sum(map(len, envelope.html.literals)) + sum(map(len, envelope.text.literals)))
        per_call = max(1, min(self.max_batch, PAYLOAD_LIMIT // (size + 4096)))
        return [recipients[i:i + per_call] for i in range(0, len(recipients), per_call)]

    def message(self, envelope: Envelope, recipient: Recipient) -> dict[str, Any]:
        headers = [{"Name": "List-Unsubscribe",
                    "Value": f"<{recipient.values['unsubscribe_url']}>"},
                   {"Name": "List-Unsubscribe-Post", "Value": "List-Unsubscribe=One-Click"},
                   {"Name": "List-Id", "Value": one_line(envelope.list_id)},
                   *({"Name": name, "Value": one_line(value)}
                     for name, value in envelope.headers)]
        message = {"From": one_line(envelope.sender),
                   "To": mailbox(recipient.name, recipient.email),
                   "Subject": one_line(envelope.subject),
                   "HtmlBody": envelope.html.fill_html(recipient.values),
                   "TextBody": envelope.text.fill(recipient.values),
                   "Headers": headers,
                   "Metadata": {DELIVERY_ARG: str(recipient.delivery_id)},
                   "MessageStream": STREAM}
        if envelope.reply_to:
            message["ReplyTo"] = one_line(envelope.reply_to)
        return message

    def send_call(self, envelope: Envelope, recipients: Sequence[Recipient]) -> list[Result]:
        response = self.post("/email/batch",
                             json=[self.message(envelope, r) for r in recipients],
                             headers={"X-Postmark-Server-Token": self.api_key,
                                      "Accept": "application/json"})
        answers = self.json_body(response)
        if not isinstance(answers, list) or len(answers) != len(recipients) \
                or not all(isinstance(a, dict) for a in answers):
            raise self.unexpected(response, "not with one answer per message")
        return [_result(r, a) for r, a in zip(recipients, answers, strict=True)]


def _result(recipient: Recipient, answer: dict[str, Any]) -> Result:
    code, text = answer.get("ErrorCode"), f"{answer.get('ErrorCode')} {answer.get('Message')}"
    if code == 0:
        return Result(recipient, "queued", provider_id=answer.get("MessageID"))
    return Result(recipient, "failed", error=f"postmark: {text}", cause=postmark_cause(code))


# Postmark's API error codes (https://postmarkapp.com/developer/api/overview#error-codes).
POSTMARK_ADDRESS = {406}             # inactive recipient: bounced, complained, unsubscribed
POSTMARK_TRANSIENT = {100, 429}      # maintenance, rate limit


def postmark_cause(error_code: int | None) -> Cause:
    if error_code in POSTMARK_ADDRESS:
        return Cause.ADDRESS
    if error_code in POSTMARK_TRANSIENT:
        return Cause.TRANSIENT
    # 300 invalid request, 10 bad token, 400-413 sender/account problems, anything new:
    # about us, so nobody is suppressed.
    return Cause.CONFIG


# Webhooks: https://postmarkapp.com/developer/webhooks/webhooks-overview
def read_webhook(settings: Settings, headers: Mapping[str, str], body: bytes) -> Webhook:
    verify_postmark(settings.postmark_webhook_username, settings.postmark_webhook_password,
                    headers.get("Authorization"))
    return Webhook("postmark", list(parse_postmark(load_json(body))))


def verify_postmark(username: str | None, password: str | None,
                    authorization: str | None) -> None:
    """Postmark: HTTP basic auth credentials written into the webhook URL."""
    if not username or not password:
        raise NotConfigured("set NEWSLETTER_POSTMARK_WEBHOOK_USERNAME and _PASSWORD to accept "
                            "Postmark events")
    expected = "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode()
    if not hmac.compare_digest(expected.encode(), (authorization or "").encode()):
        raise WebhookRefused("Postmark credentials do not match")


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
