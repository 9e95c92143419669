"""DKIM signing (RFC 6376) for the SMTP path, with dkimpy.

dkimpy's default header list leaves out List-Unsubscribe-Post, and RFC 8058 section 4
requires the signature to cover both List-Unsubscribe and List-Unsubscribe-Post, so the
list is given explicitly. Only headers the message has are named (RFC 6376 5.4 allows
more, but a header added later by a relay would then break the signature).
"""

from __future__ import annotations

import dkim
from dkim.crypto import UnparsableKeyError, parse_pem_private_key

from newsletter.errors import ConfigError
from newsletter.settings import Settings

SIGNED_HEADERS = (
    "From", "To", "Subject", "Date", "Message-ID", "Reply-To", "List-Id",
    "List-Unsubscribe", "List-Unsubscribe-Post", "MIME-Version", "Content-Type",
)


class DkimSigner:
    def __init__(self, domain: str, selector: str, private_key: bytes):
        try:
            parse_pem_private_key(private_key)  # fail at start-up, not per message
        except UnparsableKeyError as err:
            raise ConfigError(f"NEWSLETTER_DKIM_PRIVATE_KEY_PATH: not a PEM RSA key ({err})"
                              ) from None
        self.domain, self.selector, self.key = domain.encode(), selector.encode(), private_key

    @classmethod
    def from_settings(cls, settings: Settings) -> DkimSigner | None:
        if not (settings.dkim_domain and settings.dkim_selector
                and settings.dkim_private_key_path):
            return None
        return cls(settings.dkim_domain, settings.dkim_selector,
                   settings.dkim_private_key_path.read_bytes())

    def header(self, message: bytes) -> bytes:
        """The DKIM-Signature header for the message, to go in front of it."""
        head = message.split(b"\r\n\r\n", 1)[0].lower()
        present = [h.encode() for h in SIGNED_HEADERS
                   if head.startswith(h.lower().encode() + b":")
                   or b"\r\n" + h.lower().encode() + b":" in head]
        signature = dkim.sign(message, self.selector, self.domain, self.key,
                              canonicalize=(b"relaxed", b"relaxed"),
                              include_headers=present, linesep=b"\r\n")
        return signature
