"""The mail queue: transactional emails (sign-up confirmations, fresh preferences links)
written by web requests in their own transaction and sent later by a drainer
(newsletter.delivery.mail_drain), so a web worker never waits on a provider.

Claiming works as the ledger's does (docs/ARCHITECTURE.md, "Claiming"): one `UPDATE ...
WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING` under a lease, atomic on
SQLite through BEGIN IMMEDIATE. Unlike an edition, a confirmation sent twice harms nobody
and one never sent loses a reader, so a claim whose drainer died is simply queued again.
Transient failures wait with exponential backoff; whatever has not gone out within a day
expires (a day-old confirmation is more confusing than useful).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Engine, delete, func, select, update
from sqlalchemy.orm import Session

from newsletter.store.models import (
    MailState,
    QueuedMail,
    Subscriber,
    SubscriberStatus,
    Suppression,
    SuppressionReason,
    utcnow,
)

log = logging.getLogger(__name__)

CONFIRM, MANAGE_LINK = "confirm", "manage_link"
LIFETIME = dt.timedelta(days=1)
BACKOFF_BASE_SECONDS = 60.0
BACKOFF_CAP_SECONDS = 3600.0
STATES = [s.value for s in MailState]


def enqueue(session: Session, kind: str, subscriber_id: int, name: str | None = None) -> None:
    """Queue one email; the caller's transaction commits it with whatever caused it."""
    session.add(QueuedMail(kind=kind, subscriber_id=subscriber_id, name=name))


@dataclass(frozen=True)
class Claimed:
    id: int
    kind: str
    subscriber_id: int
    email: str
    name: str | None
    status: SubscriberStatus
    suppressed: SuppressionReason | None
    sent_today: int  # emails from this queue that reached the address in the last day
    attempt: int     # which claim of the row this is: only this claim may record its fate


def claim(engine: Engine, limit: int, lease_seconds: int) -> list[Claimed]:
    """Expire what is too old, queue again what a dead drainer held, then take up to
    `limit` due emails under a lease."""
    now = utcnow()
    due = (select(QueuedMail.id)
           .where(QueuedMail.state == MailState.QUEUED, QueuedMail.next_attempt_at <= now)
           .order_by(QueuedMail.id).limit(limit).with_for_update(skip_locked=True))
    with Session(engine) as session, session.begin():
        session.execute(update(QueuedMail).where(
            QueuedMail.state == MailState.SENDING, QueuedMail.lease_until < now).values(
            state=MailState.QUEUED, lease_until=None))
        session.execute(update(QueuedMail).where(
            QueuedMail.state == MailState.QUEUED, QueuedMail.created_at < now - LIFETIME).values(
            state=MailState.EXPIRED, error=func.coalesce(QueuedMail.error, "not sent")
            + " (expired after a day)"))
        taken = session.scalars(
            update(QueuedMail).where(QueuedMail.id.in_(due.scalar_subquery()))
            .values(state=MailState.SENDING, attempts=QueuedMail.attempts + 1,
                    lease_until=now + dt.timedelta(seconds=lease_seconds))
            .returning(QueuedMail.id).execution_options(synchronize_session=False)).all()
        if not taken:
            return []
        recent = (select(func.count()).where(
            QueuedMail.subscriber_id == Subscriber.id, QueuedMail.state == MailState.SENT,
            QueuedMail.sent_at > now - LIFETIME).correlate(Subscriber).scalar_subquery())
        rows = session.execute(
            select(QueuedMail.id, QueuedMail.kind, Subscriber.id, Subscriber.email,
                   Subscriber.name, Subscriber.status, Suppression.reason, recent,
                   QueuedMail.attempts)
            .join(Subscriber, Subscriber.id == QueuedMail.subscriber_id)
            .outerjoin(Suppression, Suppression.email_key == Subscriber.email_key)
            .where(QueuedMail.id.in_(taken)).order_by(QueuedMail.id)).all()
    return [Claimed(*row) for row in rows]


@dataclass(frozen=True)
class Outcome:
    item: Claimed
    state: MailState       # SENT, FAILED, DROPPED, or QUEUED to try again
    error: str | None = None


def record(engine: Engine, outcomes: Iterable[Outcome]) -> None:
    """Write each email's fate; one to try again waits 1, 2, 4 ... 60 minutes, or expires
    when its next try would fall after its day."""
    now = utcnow()
    with Session(engine) as session, session.begin():
        for outcome in outcomes:
            row = session.get(QueuedMail, outcome.item.id)
            if row is None:  # the subscriber was erased meanwhile (ON DELETE CASCADE)
                continue
            if (row.state, row.attempts) != (MailState.SENDING, outcome.item.attempt):
                # A slow drainer whose lease ran out: the row was queued again and maybe
                # claimed (and sent) by another; writing here could undo that.
                log.warning("mail %d is no longer this drainer's: its result is not "
                            "recorded", row.id)
                continue
            row.state, row.error, row.lease_until = outcome.state, outcome.error, None
            if outcome.state == MailState.SENT:
                row.sent_at = now
            elif outcome.state == MailState.QUEUED:
                row.next_attempt_at = now + backoff(row.attempts)
                if row.next_attempt_at > row.created_at + LIFETIME:
                    row.state = MailState.EXPIRED


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0),
                                    BACKOFF_CAP_SECONDS))


def counts(session: Session, since: dt.datetime) -> dict[str, int]:
    """Emails by state: all waiting or in flight, and those that ended after `since`."""
    waiting = (MailState.QUEUED, MailState.SENDING)
    rows = session.execute(
        select(QueuedMail.state, func.count()).where(
            QueuedMail.state.in_(waiting) | (QueuedMail.created_at >= since))
        .group_by(QueuedMail.state)).all()
    found = {str(state): n for state, n in rows}
    return {state: found.get(state, 0) for state in STATES}


def oldest_waiting(session: Session) -> dt.datetime | None:
    return session.scalar(select(func.min(QueuedMail.created_at)).where(
        QueuedMail.state == MailState.QUEUED))


def forget_done(session: Session, before: dt.datetime) -> int:
    """Delete emails that ended before `before` (kept a while for `status`, and for the
    name a sign-up asked for, applied when its link is confirmed)."""
    return session.execute(delete(QueuedMail).where(
        QueuedMail.state.not_in((MailState.QUEUED, MailState.SENDING)),
        QueuedMail.created_at < before)).rowcount


def requested_name(session: Session, request_id: int | None,
                   subscriber_id: int) -> tuple[bool, str | None]:
    """(found, name) of the sign-up request a confirmation link answers."""
    if request_id is None:
        return False, None
    row = session.get(QueuedMail, request_id)
    if row is None or row.subscriber_id != subscriber_id:
        return False, None
    return True, row.name

