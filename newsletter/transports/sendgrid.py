"""SendGrid v3 Mail Send: POST /v3/mail/send, Bearer key, up to 1,000 personalizations.

Docs: https://www.twilio.com/docs/sendgrid/api-reference/mail-send/mail-send. A 202 with
an empty body and X-Message-Id means queued; per-recipient values go in each
personalization's `substitutions` (random tags, see Tags) and its own List-Unsubscribe
header (personalization `headers`).
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

from newsletter.message import Envelope, Recipient, Result
from newsletter.mime import one_line
from newsletter.transports.http import DELIVERY_ARG, HttpTransport, Tags


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
                "substitutions": {tags.form(name): value
                                  for name, value in tags.values(r).items()},
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
