"""What every request shares: settings, the session factory, links, limiters; one database
session per request, which the view commits (services never commit)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from flask import current_app, g
from sqlalchemy.orm import Session, sessionmaker

from newsletter.mail.links import Links
from newsletter.providers import Transport
from newsletter.settings import Settings
from subscribers.signup import Confirmations, RequestLimiter


@dataclass
class WebState:
    settings: Settings
    sessions: sessionmaker[Session]
    links: Links
    confirmations: Confirmations
    transport: Callable[[Settings], Transport]
    signups_per_client: RequestLimiter   # sign-up posts per client address
    mails_per_address: RequestLimiter    # confirmation emails per address (mail-bombing)
    logins_per_client: RequestLimiter    # admin password guesses
    mailgun_tokens: dict[str, float] = field(default_factory=dict)  # replay guard
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
