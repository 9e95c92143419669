"""Mailgun: POST /v3/DOMAIN/messages (form), Basic auth api:KEY, up to 1,000 recipients.

Docs: https://documentation.mailgun.com/docs/mailgun/user-manual/sending-messages/batch-sending.
Each `to` gets its own copy when `recipient-variables` is present; values are referenced as
%recipient.NAME%, with random NAMEs (see Tags), also inside the List-Unsubscribe header.
A 200 whose body says "Mailgun Magnificent API" is Mailgun's answer to a wrong URL.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

from newsletter.errors import ConfigError, TransportError
from newsletter.message import Envelope, Recipient, Result
from newsletter.mime import encode_address, mailbox, one_line
from newsletter.settings import Settings
from newsletter.transports.http import DELIVERY_ARG, KEPT, HttpTransport, Tags


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
