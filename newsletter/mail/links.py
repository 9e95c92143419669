"""Signed tokens and the per-recipient links built from them.

Three kinds, each with its own salt so one can never stand in for another:
- unsubscribe: one deterministic token per subscriber that never expires (RFC 8058 and the
  bulk-sender rules expect an old email's link to unsubscribe);
- manage (preferences, data export, erase): they change or reveal personal data, so they
  expire after NEWSLETTER_MANAGE_TOKEN_DAYS; an expired one still names its subscriber, who
  may ask for a fresh link by email (`read_for_renewal`);
- confirm: expires after 7 days and records when it was made and for which sign-up request.

itsdangerous signs them with NEWSLETTER_SECRET_KEY and verifies them with it or any key in
NEWSLETTER_SECRET_KEY_FALLBACKS (it takes a list: the last signs, all verify), so a key can
be rotated without breaking the links already mailed. The payload is only ids and times:
no address in any URL.
"""

from __future__ import annotations

import datetime as dt
import hmac
import time

from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer
from itsdangerous.encoding import base64_encode, int_to_bytes, want_bytes
from itsdangerous.timed import TimestampSigner

from newsletter.errors import NewsletterError
from newsletter.settings import Settings

CONFIRM_MAX_AGE = 7 * 24 * 3600
TEST_SUBSCRIBER_ID = 0  # test sends: links that lead to a harmless "this was a test" page


class BadToken(NewsletterError):
    """A token that is forged, tampered with, for another purpose, or expired."""


class ExpiredLink(BadToken):
    """A genuine manage link past its age: its subscriber may ask for a fresh one."""

    def __init__(self, message: str, token: str):
        super().__init__(message)
        self.token = token


class _Mint:
    """The tokens `serializer.dumps(subscriber_id)` gives, byte for byte, at a fifth of
    the cost: a send makes two per recipient (measured: ~19 us each through dumps(), which
    makes a signer, derives its key and tries zlib every time; ~2 us here). The key is the
    library's own derived key and the HMAC its algorithm's; only the assembly is repeated
    here (payload, [timestamp,] signature, base64url, joined by the separator), and
    tests/test_tokens.py checks every piece against itsdangerous for ids of every length.
    Reading tokens stays with itsdangerous."""

    def __init__(self, serializer: URLSafeSerializer):
        self._serializer, self._signer = serializer, serializer.make_signer()
        self._mac = hmac.new(self._signer.derive_key(),
                             digestmod=self._signer.algorithm.digest_method)
        self._sep = want_bytes(self._signer.sep)
        self._timed = isinstance(self._signer, TimestampSigner)

    def __call__(self, subscriber_id: int) -> str:
        digits = str(subscriber_id).encode()  # an int's compact JSON
        if len(digits) > 10:  # zlib could shorten it (never under 11 bytes): the library
            return self._serializer.dumps(subscriber_id)
        value = base64_encode(digits)
        if self._timed:
            value += self._sep + base64_encode(int_to_bytes(self._signer.get_timestamp()))
        mac = self._mac.copy()
        mac.update(value)
        return (value + self._sep + base64_encode(mac.digest())).decode()


class Links:
    def __init__(self, settings: Settings):
        keys = list(reversed(settings.secret_keys))  # itsdangerous signs with the last
        self.base_url = settings.base_url
        self.manage_days = settings.manage_token_days
        # Salt "manage" is the unsubscribe token's since the first release: old links work.
        self._unsubscribe = URLSafeSerializer(keys, salt="manage")
        self._manage = URLSafeTimedSerializer(keys, salt="preferences")
        self._mint_unsubscribe, self._mint_manage = _Mint(self._unsubscribe), _Mint(self._manage)
        self._confirm = URLSafeTimedSerializer(keys, salt="confirm")

    # Tokens
    def unsubscribe_token(self, subscriber_id: int) -> str:
        return self._mint_unsubscribe(subscriber_id)

    def manage_token(self, subscriber_id: int) -> str:
        return self._mint_manage(subscriber_id)

    def confirm_token(self, subscriber_id: int, request_id: int | None = None) -> str:
        # When it was made, to the microsecond (itsdangerous' own stamp is whole seconds):
        # a link asked for before someone left must not bring them back.
        return self._confirm.dumps([subscriber_id, time.time(), request_id])

    def read_unsubscribe(self, token: str) -> int:
        try:
            return _as_id(self._unsubscribe.loads(token))
        except BadData:
            raise BadToken(NOT_VALID) from None

    def read_manage(self, token: str) -> int:
        try:
            return _as_id(self._manage.loads(token, max_age=self.manage_days * 86400))
        except SignatureExpired:
            raise ExpiredLink(f"this link has expired: links to your preferences work for "
                              f"{self.manage_days} days", token) from None
        except BadData:
            raise BadToken(NOT_VALID) from None

    def read_for_renewal(self, token: str) -> int:
        """The subscriber of a genuine manage link however old: enough to mail that
        subscriber a fresh link (it goes to their address, not to the asker)."""
        try:
            return _as_id(self._manage.loads(token))
        except BadData:
            raise BadToken(NOT_VALID) from None

    def read_confirm(self, token: str) -> tuple[int, dt.datetime, int | None]:
        """The subscriber id, when the link was made, and the sign-up request it answers."""
        try:
            value = self._confirm.loads(token, max_age=CONFIRM_MAX_AGE)
        except SignatureExpired:
            raise BadToken("this confirmation link has expired: please sign up again") from None
        except BadData:
            raise BadToken("this confirmation link is not valid") from None
        match value:
            case [int() as subscriber_id, float() as made, (int() | None) as request_id]:
                return (_as_id(subscriber_id), dt.datetime.fromtimestamp(made, dt.UTC),
                        request_id)
        raise BadToken("this confirmation link is not valid")

    # URLs
    def unsubscribe_url(self, subscriber_id: int) -> str:
        return self.values(subscriber_id, "", None)["unsubscribe_url"]

    def confirm_url(self, subscriber_id: int, request_id: int | None = None) -> str:
        return f"{self.base_url}/confirm/{self.confirm_token(subscriber_id, request_id)}"

    def values(self, subscriber_id: int, email: str, date: dt.date | None) -> dict[str, str]:
        """Every slot value of one recipient's copy (newsletter.render.slots.SLOTS)."""
        return slot_values(self.base_url, date, email, self.unsubscribe_token(subscriber_id),
                           self.manage_token(subscriber_id))


def slot_values(base_url: str, date: dt.date | None, email: str = "reader@example.org",
                token: str | None = "SAMPLE", manage: str | None = None) -> dict[str, str]:
    """Slot values on `base_url`: `token` unsubscribes, `manage` (default: `token`) opens
    the preferences. With the defaults, stand-ins for previews, which must not carry
    anyone's token; the web archive passes email="" and token=None (no personal links:
    they lead to the sign-up page)."""
    personal = {"unsubscribe_url": f"{base_url}/unsubscribe/{token}",
                "preferences_url": f"{base_url}/preferences/{manage or token}"} if token else {
        "unsubscribe_url": f"{base_url}/subscribe", "preferences_url": f"{base_url}/subscribe"}
    webview = f"{base_url}/archive/{date.isoformat()}" if date else f"{base_url}/archive"
    return {"email": email, **personal, "webview_url": webview}


NOT_VALID = "this link is not valid: it may have been cut short or changed"


def _as_id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadToken("this link is not valid")
    return value
