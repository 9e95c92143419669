"""What every request shares: settings, the session factory, links; one database session
per request, which the view commits (services never commit). Rate limits: limits.py."""

from __future__ import annotations

from dataclasses import dataclass

from flask import current_app, g
from sqlalchemy.orm import Session, sessionmaker

from newsletter.mail.links import Links
from newsletter.settings import Settings


@dataclass
class WebState:
    settings: Settings
    sessions: sessionmaker[Session]
    links: Links
    admin_hash: str | None = None  # NEWSLETTER_ADMIN_PASSWORD, hashed (werkzeug.security)


def state() -> WebState:
    return current_app.extensions["newsletter"]


def db() -> Session:
    """This request's session, opened on first use and closed at teardown (uncommitted
    work is rolled back there)."""
    if "db" not in g:
        g.db = state().sessions()
    return g.db


def close_db(_error: BaseException | None = None) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()
