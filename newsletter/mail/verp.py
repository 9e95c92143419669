"""VERP return paths: each copy's envelope sender names its delivery, so a bounce that
comes back by mail says whose copy it was, whatever the remote server wrote in it.

With NEWSLETTER_BOUNCE_ADDRESS = bounces@news.example.org, the copy of delivery 42 goes out
with MAIL FROM:<bounces+<token>@news.example.org> (and so Return-Path, RFC 5321 4.4); a
bounce is sent back to exactly that address (RFC 3464 2.2, RFC 5321 6.1). The token is the
delivery id and a truncated HMAC of it, base32 in lower case: short (16 characters),
unchanged by servers that fold the local part's case, and holding no personal data. A token
whose MAC does not match is refused, so nobody can bounce someone else's address away by
writing a bounce to bounces+<guess>@.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from newsletter.errors import NewsletterError
from newsletter.settings import Settings

_ID_BYTES = 5   # delivery ids up to 2**40
_MAC_BYTES = 5  # 40 bits: a forger needs ~2**39 bounces for one hit
TOKEN_LENGTH = (_ID_BYTES + _MAC_BYTES) * 8 // 5


class ForgedToken(NewsletterError):
    """An address of our VERP form whose token does not verify."""


class Verp:
    def __init__(self, bounce_address: str, secret: str):
        self.local, _, self.domain = bounce_address.lower().rpartition("@")
        # A key of its own, so a VERP token is never valid as any other token.
        self._key = hashlib.sha256(b"verp\0" + secret.encode()).digest()
        self._form = re.compile(rf"{re.escape(self.local)}\+([a-z2-7]+)@{re.escape(self.domain)}")

    @classmethod
    def from_settings(cls, settings: Settings) -> Verp | None:
        """None unless NEWSLETTER_BOUNCE_ADDRESS is set."""
        if not settings.bounce_address:
            return None
        return cls(settings.bounce_address, settings.require_secret())

    @property
    def address(self) -> str:
        return f"{self.local}@{self.domain}"

    def return_path(self, delivery_id: int | None) -> str:
        """The envelope sender for one copy; a test send (no delivery) gets the plain
        bounce address, so its bounces land in the mailbox and name nobody."""
        if delivery_id is None:
            return self.address
        return f"{self.local}+{self.token(delivery_id)}@{self.domain}"

    def token(self, delivery_id: int) -> str:
        data = delivery_id.to_bytes(_ID_BYTES, "big")
        return base64.b32encode(data + self._mac(data)).decode("ascii").lower()

    def delivery_id(self, address: str) -> int | None:
        """The delivery an address names; None if it is not of our VERP form. Raises
        ForgedToken when it is, but the token does not verify."""
        found = self._form.fullmatch(address.strip().strip("<>").lower())
        if found is None:
            return None
        token = found.group(1)
        try:
            raw = base64.b32decode(token.upper()) if len(token) == TOKEN_LENGTH else b""
        except ValueError:
            raw = b""
        data, mac = raw[:_ID_BYTES], raw[_ID_BYTES:]
        if len(raw) != _ID_BYTES + _MAC_BYTES or not hmac.compare_digest(mac, self._mac(data)):
            raise ForgedToken(f"bounce address with a bad token: {address}")
        return int.from_bytes(data, "big")

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()[:_MAC_BYTES]
