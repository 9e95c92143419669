"""The providers: one module per way out (outbox, smtp with dkim and smtp_replies,
sendgrid, mailgun, postmark), each holding its transport, what its error codes mean
(newsletter.mail.failures.Cause) and, for the ESPs, its webhook verification and event
parsing (django-anymail keeps these in one module per provider). What they share:
the transport interface (base), the HTTP sequence and retry policy (http), and the webhook
event and refusals (webhooks). NEWSLETTER_TRANSPORT picks a transport.

`get_transport(settings)` is called at start-up: a missing option (no API key, no Mailgun
domain, a bad DKIM key) stops the command there with a ConfigError naming the variable.

May import: newsletter.errors, newsletter.settings, newsletter.store, newsletter.render,
newsletter.mail. Applying the events (suppressing addresses) is subscribers.webhooks.
"""

from __future__ import annotations

from newsletter.providers import mailgun, postmark, sendgrid
from newsletter.providers.base import Transport
from newsletter.providers.mailgun import MailgunTransport
from newsletter.providers.outbox import OutboxTransport
from newsletter.providers.postmark import PostmarkTransport
from newsletter.providers.sendgrid import SendGridTransport
from newsletter.providers.smtp import SmtpTransport
from newsletter.providers.webhooks import ReadWebhook
from newsletter.settings import Settings

TRANSPORTS: dict[str, type[Transport]] = {
    cls.name: cls for cls in (OutboxTransport, SmtpTransport, SendGridTransport,
                              MailgunTransport, PostmarkTransport)
}
# POST /webhooks/<name>: each provider verifies and parses its own posts.
WEBHOOKS: dict[str, ReadWebhook] = {
    "sendgrid": sendgrid.read_webhook,
    "mailgun": mailgun.read_webhook,
    "postmark": postmark.read_webhook,
}


def get_transport(settings: Settings) -> Transport:
    # NEWSLETTER_TRANSPORT was checked against these names when the settings were read.
    return TRANSPORTS[settings.transport](settings)


__all__ = ["TRANSPORTS", "WEBHOOKS", "Transport", "get_transport"]
