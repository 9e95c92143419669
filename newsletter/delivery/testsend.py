"""Test sends: the day's edition rendered fresh and mailed to a few editors.

Nothing is frozen or recorded: no edition row, no delivery rows, so a test send never
changes what the real send will mail or who it will mail. The links in a test copy carry
the test subscriber id, which leads to a harmless "this was a test" page.
"""

from __future__ import annotations

import datetime as dt
import secrets
from collections.abc import Sequence

from email_validator import EmailNotValidError
from sqlalchemy.orm import Session, sessionmaker

from newsletter.errors import NewsletterError
from newsletter.mail.links import TEST_SUBSCRIBER_ID, Links
from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.providers import get_transport
from newsletter.render.edition import render_edition
from newsletter.settings import Settings, check_address
from newsletter.stories.imports import require_day

SUBJECT_PREFIX = "[TEST] "


def test_send(sessions: sessionmaker[Session], settings: Settings, date: dt.date,
              addresses: Sequence[str]) -> list[Result]:
    """Send the edition of `date` to `addresses` (default NEWSLETTER_TEST_RECIPIENTS).
    The stories are read in a session closed before any network call: no transaction (on
    SQLite, no lock) is held while the transport talks to the server."""
    targets = _addresses(addresses or settings.test_recipient_list)
    with sessions() as session:
        stories = require_day(session, date)
    edition = render_edition(stories, date=date, settings=settings)
    links = Links(settings)
    envelope = Envelope.from_settings(settings, SUBJECT_PREFIX + edition.subject,
                                      edition.html, edition.text)
    recipients = [Recipient(a, None, links.values(TEST_SUBSCRIBER_ID, a, date),
                            message_id=f"<test.{secrets.token_hex(8)}@{settings.message_id_host}>")
                  for a in targets]
    results: list[Result] = []
    with get_transport(settings) as transport:
        for start in range(0, len(recipients), transport.max_batch):
            results += transport.send_batch(envelope, recipients[start:start + transport.max_batch])
    return results


test_send.__test__ = False  # type: ignore[attr-defined]  # not a pytest test, despite its name


def _addresses(addresses: Sequence[str]) -> list[str]:
    """Checked and normalised, each once (addresses compare case-insensitively)."""
    if not addresses:
        raise NewsletterError("no addresses to send to: give --to ADDRESS or set "
                              "NEWSLETTER_TEST_RECIPIENTS")
    unique: dict[str, str] = {}
    for address in addresses:
        try:
            normal = check_address(address)
        except EmailNotValidError as err:
            raise NewsletterError(f"not an email address: {address!r} ({err})") from None
        unique.setdefault(normal.lower(), normal)
    return list(unique.values())
