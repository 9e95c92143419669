"""Mail transports behind one small interface; NEWSLETTER_TRANSPORT picks one.

`get_transport(settings)` is called at start-up: a missing option (no API key, no Mailgun
domain, a bad DKIM key) stops the command there with a ConfigError naming the variable.
"""

from __future__ import annotations

from newsletter.settings import Settings
from newsletter.transports.base import Transport
from newsletter.transports.mailgun import MailgunTransport
from newsletter.transports.outbox import OutboxTransport
from newsletter.transports.postmark import PostmarkTransport
from newsletter.transports.sendgrid import SendGridTransport
from newsletter.transports.smtp import SmtpTransport

TRANSPORTS: dict[str, type[Transport]] = {
    cls.name: cls for cls in (OutboxTransport, SmtpTransport, SendGridTransport,
                              MailgunTransport, PostmarkTransport)
}


def get_transport(settings: Settings) -> Transport:
    # NEWSLETTER_TRANSPORT was checked against these names when the settings were read.
    return TRANSPORTS[settings.transport](settings)


__all__ = ["TRANSPORTS", "Transport", "get_transport"]
