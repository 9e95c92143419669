"""Helpers for the web app tests (tests/test_web_*.py): the real app on the test database."""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask.testing import FlaskClient

from newsletter.settings import Settings
from newsletter.store.db import make_engine, session_factory

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_token(client: FlaskClient, path: str) -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    match = CSRF.search(page.text)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def outbox(settings: Settings) -> list[EmailMessage]:
    folder = Path(settings.outbox_dir)
    files = sorted(folder.glob("*.eml")) if folder.is_dir() else []  # names start with the time
    return [BytesParser(policy=policy.default).parsebytes(f.read_bytes()) for f in files]


def text_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content()


def link(message: EmailMessage, settings: Settings, route: str) -> str:
    """The path of the first `route` link (e.g. "confirm") in the email's text part."""
    match = re.search(re.escape(settings.base_url) + rf"(/{route}/[A-Za-z0-9._-]+)",
                      text_part(message))
    assert match, f"no /{route}/ link in the email"
    return match.group(1)


def sessions(settings: Settings):
    return session_factory(make_engine(settings.database_url))
