"""Signed tokens and the per-recipient links built from them.

One deterministic token per subscriber serves both the unsubscribe and the preferences
pages (it never expires: a link in an old email must still work); confirmation tokens
expire. itsdangerous signs them with NEWSLETTER_SECRET_KEY, so nobody can forge one for
another subscriber. The payload is only the subscriber's id: no address in any URL.
"""

from __future__ import annotations

import datetime as dt
import time

from itsdangerous import BadData, SignatureExpired, URLSafeSerializer, URLSafeTimedSerializer

from newsletter.errors import NewsletterError
from newsletter.settings import Settings

CONFIRM_MAX_AGE = 7 * 24 * 3600
TEST_SUBSCRIBER_ID = 0  # test sends: links that lead to a harmless "this was a test" page


class BadToken(NewsletterError):
    """A token that is forged, tampered with, for another purpose, or expired."""


class Links:
    def __init__(self, settings: Settings):
        secret = settings.require_secret()
        self.base_url = settings.base_url
        self._manage = URLSafeSerializer(secret, salt="manage")
        self._confirm = URLSafeTimedSerializer(secret, salt="confirm")

    # Tokens
    def manage_token(self, subscriber_id: int) -> str:
        return self._manage.dumps(subscriber_id)

    def confirm_token(self, subscriber_id: int) -> str:
        # When it was made, to the microsecond (itsdangerous' own stamp is whole seconds):
        # a link asked for before someone left must not bring them back.
        return self._confirm.dumps([subscriber_id, time.time()])

    def read_manage(self, token: str) -> int:
        try:
            return _as_id(self._manage.loads(token))
        except BadData:
            raise BadToken("this link is not valid: it may have been cut short or "
                           "changed") from None

    def read_confirm(self, token: str) -> tuple[int, dt.datetime]:
        """The subscriber id, and when the link was made."""
        try:
            value = self._confirm.loads(token, max_age=CONFIRM_MAX_AGE)
        except SignatureExpired:
            raise BadToken("this confirmation link has expired: please sign up again") from None
        except BadData:
            raise BadToken("this confirmation link is not valid") from None
        match value:
            case [int() as subscriber_id, float() as made]:
                return _as_id(subscriber_id), dt.datetime.fromtimestamp(made, dt.UTC)
        raise BadToken("this confirmation link is not valid")

    # URLs
    def unsubscribe_url(self, subscriber_id: int) -> str:
        return self.values(subscriber_id, "", None)["unsubscribe_url"]

    def preferences_url(self, subscriber_id: int) -> str:
        return self.values(subscriber_id, "", None)["preferences_url"]

    def confirm_url(self, subscriber_id: int) -> str:
        return f"{self.base_url}/confirm/{self.confirm_token(subscriber_id)}"

    def values(self, subscriber_id: int, email: str, date: dt.date | None) -> dict[str, str]:
        """Every slot value of one recipient's copy (newsletter.render.slots.SLOTS)."""
        return slot_values(self.base_url, date, email, self.manage_token(subscriber_id))


def slot_values(base_url: str, date: dt.date | None, email: str = "reader@example.org",
                token: str = "SAMPLE") -> dict[str, str]:
    """Slot values on `base_url`. With the defaults, stand-ins for previews, which must not
    carry anyone's token; the web archive passes email="" and token=None (no personal
    links: they lead to the sign-up page)."""
    manage = {"unsubscribe_url": f"{base_url}/unsubscribe/{token}",
              "preferences_url": f"{base_url}/preferences/{token}"} if token else {
        "unsubscribe_url": f"{base_url}/subscribe", "preferences_url": f"{base_url}/subscribe"}
    webview = f"{base_url}/archive/{date.isoformat()}" if date else f"{base_url}/archive"
    return {"email": email, **manage, "webview_url": webview}


def _as_id(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise BadToken("this link is not valid")
    return value
