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
    read_sessions: sessionmaker[Session]  # pages that only read: no write lock on SQLite
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


def read_db() -> Session:
    """This request's session for pages that only read (archive, editors' views): on
    SQLite it takes no write lock, so it answers while a send is writing."""
    if "read_db" not in g:
        g.read_db = state().read_sessions()
    return g.read_db


def close_db(_error: BaseException | None = None) -> None:
    for name in ("db", "read_db"):
        session = g.pop(name, None)
        if session is not None:
            session.close()
