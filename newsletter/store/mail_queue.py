"""The mail queue: transactional emails (sign-up confirmations, fresh preferences links)
written by web requests in their own transaction and sent later by a drainer
(newsletter.delivery.mail_drain), so a web worker never waits on a provider.

Claiming works as the ledger's does (docs/ARCHITECTURE.md, "Claiming"): one `UPDATE ...
WHERE id IN (SELECT ... FOR UPDATE SKIP LOCKED LIMIT n) RETURNING` under a lease, atomic on
SQLite through BEGIN IMMEDIATE. Unlike an edition, a confirmation sent twice harms nobody
and one never sent loses a reader, so a claim whose drainer died is simply queued again.
Transient failures wait with exponential backoff; whatever has not gone out within a day
expires (a day-old confirmation is more confusing than useful).

Core statements on newsletter.store.tables: `status` and `health` read the queue without
loading the ORM, and every function here runs on a Connection or an ORM Session alike.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from newsletter.backoff import backoff
from newsletter.store.tables import (
    MailState,
    SubscriberStatus,
    SuppressionReason,
    mail_queue,
    subscribers,
    suppressions,
    utcnow,
)

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

CONFIRM, MANAGE_LINK = "confirm", "manage_link"
LIFETIME = dt.timedelta(days=1)
BACKOFF_BASE_SECONDS = 60.0
BACKOFF_CAP_SECONDS = 3600.0
STATES = [s.value for s in MailState]
mail = mail_queue.c  # its columns: mail.state, mail.created_at ...


def enqueue(db: Connection | Session, kind: str, subscriber_id: int,
            name: str | None = None) -> None:
    """Queue one email; the caller's transaction commits it with whatever caused it."""
    db.execute(insert(mail_queue).values(kind=kind, subscriber_id=subscriber_id, name=name))


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
    due = (select(mail.id)
           .where(mail.state == MailState.QUEUED, mail.next_attempt_at <= now)
           .order_by(mail.id).limit(limit).with_for_update(skip_locked=True))
    person = subscribers.c
    with engine.begin() as conn:
        conn.execute(update(mail_queue).where(
            mail.state == MailState.SENDING, mail.lease_until < now).values(
            state=MailState.QUEUED, lease_until=None))
        conn.execute(update(mail_queue).where(
            mail.state == MailState.QUEUED, mail.created_at < now - LIFETIME).values(
            state=MailState.EXPIRED, error=func.coalesce(mail.error, "not sent")
            + " (expired after a day)"))
        taken = conn.scalars(
            update(mail_queue).where(mail.id.in_(due.scalar_subquery()))
            .values(state=MailState.SENDING, attempts=mail.attempts + 1,
                    lease_until=now + dt.timedelta(seconds=lease_seconds))
            .returning(mail.id)).all()
        if not taken:
            return []
        recent = (select(func.count()).where(
            mail.subscriber_id == person.id, mail.state == MailState.SENT,
            mail.sent_at > now - LIFETIME).correlate(subscribers).scalar_subquery())
        rows = conn.execute(
            select(mail.id, mail.kind, person.id, person.email, person.name, person.status,
                   suppressions.c.reason, recent, mail.attempts)
            .join(subscribers, person.id == mail.subscriber_id)
            .outerjoin(suppressions, suppressions.c.email_key == person.email_key)
            .where(mail.id.in_(taken)).order_by(mail.id)).all()
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
    with engine.begin() as conn:
        for outcome in outcomes:
            row = conn.execute(select(mail.id, mail.state, mail.attempts, mail.created_at)
                               .where(mail.id == outcome.item.id)).first()
            if row is None:  # the subscriber was erased meanwhile (ON DELETE CASCADE)
                continue
            if (row.state, row.attempts) != (MailState.SENDING, outcome.item.attempt):
                # A slow drainer whose lease ran out: the row was queued again and maybe
                # claimed (and sent) by another; writing here could undo that.
                log.warning("mail %d is no longer this drainer's: its result is not "
                            "recorded", row.id)
                continue
            fate = {"state": outcome.state, "error": outcome.error, "lease_until": None}
            if outcome.state == MailState.SENT:
                fate["sent_at"] = now
            elif outcome.state == MailState.QUEUED:
                fate["next_attempt_at"] = now + retry_in(row.attempts)
                if fate["next_attempt_at"] > row.created_at + LIFETIME:
                    fate["state"] = MailState.EXPIRED
            conn.execute(update(mail_queue).where(mail.id == row.id).values(**fate))


def retry_in(attempts: int) -> dt.timedelta:
    # Not jittered: the time is kept on the row and whichever drainer runs next takes it,
    # so failures do not come back in lockstep anyway, and an operator can predict it.
    return dt.timedelta(seconds=backoff(attempts, BACKOFF_BASE_SECONDS, BACKOFF_CAP_SECONDS,
                                        jitter=False))


def counts(db: Connection | Session, since: dt.datetime) -> dict[str, int]:
    """Emails by state: all waiting or in flight, and those that ended after `since`."""
    waiting = (MailState.QUEUED, MailState.SENDING)
    rows = db.execute(
        select(mail.state, func.count()).where(
            mail.state.in_(waiting) | (mail.created_at >= since))
        .group_by(mail.state)).all()
    found = {str(state): n for state, n in rows}
    return {state: found.get(state, 0) for state in STATES}


def oldest_waiting(db: Connection | Session) -> dt.datetime | None:
    return db.scalar(select(func.min(mail.created_at)).where(mail.state == MailState.QUEUED))


def forget_done(db: Connection | Session, before: dt.datetime) -> int:
    """Delete emails that ended before `before` (kept a while for `status`, and for the
    name a sign-up asked for, applied when its link is confirmed)."""
    return db.execute(delete(mail_queue).where(
        mail.state.not_in((MailState.QUEUED, MailState.SENDING)),
        mail.created_at < before)).rowcount


def requested_name(db: Connection | Session, request_id: int | None,
                   subscriber_id: int) -> tuple[bool, str | None]:
    """(found, name) of the sign-up request a confirmation link answers."""
    if request_id is None:
        return False, None
    row = db.execute(select(mail.subscriber_id, mail.name).where(mail.id == request_id)).first()
    if row is None or row.subscriber_id != subscriber_id:
        return False, None
    return True, row.name

