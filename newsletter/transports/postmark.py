"""Postmark: POST /email/batch, X-Postmark-Server-Token, up to 500 messages and 50 MB.

Docs: https://postmarkapp.com/developer/api/email-api#send-batch-emails. The 200 answer is
one object per message and some may have failed: ErrorCode 0 is queued, 406 an inactive
(bounced, complained, unsubscribed) recipient, 300 an invalid message or address
(https://postmarkapp.com/developer/api/overview#error-codes). Postmark has no
substitution, so each message carries its own filled-in copy.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from newsletter.failures import postmark_cause
from newsletter.message import Envelope, Recipient, Result
from newsletter.mime import mailbox, one_line
from newsletter.transports.http import DELIVERY_ARG, HttpTransport

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
