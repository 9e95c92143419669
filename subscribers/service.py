"""Subscriber changes: add, confirm, unsubscribe, suppress, erase.

Services take a session and never commit; the entry point (CLI, web request) owns the
transaction. Addresses are validated with email-validator (syntax only, no DNS) and compared
by `email_key`, the lower-cased address.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from dataclasses import dataclass

from email_validator import EmailNotValidError
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.errors import SubscriberError
from newsletter.settings import check_address
from newsletter.store.models import Subscriber, SubscriberStatus, SuppressionReason, utcnow
from newsletter.store.suppression import leave, suppress, suppression

__all__ = ["Address", "add", "clean_name", "confirm", "find", "leave", "parse_address",
           "pause", "remove", "suppress", "suppression"]

MAX_NAME = 200
MAX_EMAIL = 320  # RFC 5321 4.5.3.1: 64 + @ + 255, the column's size


@dataclass(frozen=True)
class Address:
    email: str  # as the person wrote it, trimmed, domain normalised (IDNA-aware)
    key: str    # the one form addresses are compared by


def parse_address(raw: str) -> Address:
    """A valid address or SubscriberError saying why not."""
    value = (raw or "").strip()
    if not value:
        raise SubscriberError("the email address is empty")
    if len(value) > MAX_EMAIL:  # refused before anything echoes it back
        raise SubscriberError(f"the email address is longer than {MAX_EMAIL} characters")
    try:
        email = _plain(value) or check_address(value)
    except EmailNotValidError as err:
        raise SubscriberError(f"{value!r} is not a valid email address: {err}") from None
    return Address(email, email.lower())


# RFC 5322 dot-atom: the local part that needs no quoting, normalising or Unicode rules.
DOT_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
MAX_LOCAL, MAX_ADDRESS = 64, 254  # RFC 5321 4.5.3.1


def _plain(value: str) -> str | None:
    """The common case fast (a CSV import checks a million addresses): an ASCII dot-atom
    local part at a domain checked once per domain by the full check; None otherwise.
    Two thirds of the full check's time is the domain's (IDNA, special-use names)."""
    local, _, domain = value.rpartition("@")
    if (len(value) > MAX_ADDRESS or len(local) > MAX_LOCAL or not value.isascii()
            or not DOT_ATOM.fullmatch(local)):
        return None
    normal = _domain(domain)
    return f"{local}@{normal}" if normal == domain.lower() else None


@functools.lru_cache(maxsize=4096)
def _domain(domain: str) -> str:
    return check_address(f"x@{domain}").rpartition("@")[2]


def clean_name(raw: str | None) -> str | None:
    """Names are one line of printable text; control characters could forge mail headers."""
    if raw is None:
        return None
    if raw.isprintable() and "  " not in raw and raw == raw.strip():
        name = raw  # already one clean line: the common case, checked in C
    else:
        name = " ".join("".join(ch if ch.isprintable() else " " for ch in raw).split())
    if len(name) > MAX_NAME:
        raise SubscriberError(f"the name is longer than {MAX_NAME} characters")
    return name or None


def find(session: Session, email: str) -> Subscriber | None:
    key = parse_address(email).key
    return session.scalar(select(Subscriber).where(Subscriber.email_key == key))


def add(session: Session, email: str, name: str | None = None, *, confirmed: bool = False,
        source: str = "cli", ip: str | None = None) -> Subscriber:
    """Add one person: pending (double opt-in to follow) unless `confirmed`."""
    address = parse_address(email)
    name = clean_name(name)
    if (existing := find(session, address.email)) is not None:
        raise SubscriberError(f"{address.email} is already a subscriber ({existing.status})")
    if confirmed and (blocked := suppression(session, address.key)) is not None:
        raise SubscriberError(f"{address.email} is suppressed ({blocked.reason}); only a fresh "
                              "sign-up with confirmation can bring it back")
    now = utcnow()
    person = Subscriber(
        email=address.email, email_key=address.key, name=name, source=source, consent_ip=ip,
        status=SubscriberStatus.CONFIRMED if confirmed else SubscriberStatus.PENDING,
        created_at=now, status_changed_at=now, confirmed_at=now if confirmed else None)
    session.add(person)
    session.flush()
    return person


def confirm(session: Session, person: Subscriber, ip: str | None = None) -> None:
    """The person proved the address is theirs (they pressed the button of a fresh link):
    that lifts their own unsubscribe or erasure, and a bounce (the mailbox works again:
    this very email arrived). A complaint is never lifted here: a spam report from the
    address outweighs a click, and only an operator may undo it."""
    if person.status == SubscriberStatus.CONFIRMED:
        return
    if (blocked := suppression(session, person.email_key)) is not None:
        if blocked.reason == SuppressionReason.COMPLAINED:
            raise SubscriberError("a spam complaint was reported from this address, so we "
                                  "cannot start sending to it again from here")
        session.delete(blocked)
    now = utcnow()
    person.status, person.confirmed_at, person.status_changed_at = (
        SubscriberStatus.CONFIRMED, now, now)
    person.consent_ip = ip or person.consent_ip
    person.paused_until = None


def remove(session: Session, email: str) -> Address:
    """Erase the person (their deliveries go with them) and keep a suppression entry so
    they are never mailed again, even if an old CSV brings them back."""
    person = find(session, email)
    if person is None:
        raise SubscriberError(f"no subscriber {email.strip()!r}")
    address = Address(person.email, person.email_key)
    session.delete(person)
    suppress(session, address.key, SuppressionReason.REMOVED, "erased on request")
    return address


def pause(session: Session, person: Subscriber, until: dt.date | None) -> None:
    person.paused_until = until
    person.status_changed_at = utcnow()
