"""What every request shares: settings, the session factory, links, limiters; one database
session per request, which the view commits (services never commit)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app, g
from sqlalchemy.orm import Session, sessionmaker

from newsletter.links import Links
from newsletter.settings import Settings
from newsletter.transports import Transport
from subscribers.signup import Confirmations, RequestLimiter


@dataclass
class WebState:
    settings: Settings
    sessions: sessionmaker[Session]
    read_sessions: sessionmaker[Session]  # pages that only read: no write lock on SQLite
    links: Links
    confirmations: Confirmations
    transport: Callable[[Settings], Transport]
    signups_per_client: RequestLimiter   # sign-up posts per client address
    mails_per_address: RequestLimiter    # confirmation emails per address (mail-bombing)
    logins_per_client: RequestLimiter    # admin password guesses
    mailgun_tokens: dict[str, float] = field(default_factory=dict)  # replay guard


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
