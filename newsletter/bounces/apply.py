"""Applying one message that came back to the store: whose copy it was, and what follows.

The VERP token (newsletter.mail.verp) names the delivery; without one, the failed address
must match a delivery of the last 30 days, so a bounce about an address we did not mail
changes nothing. A token that does not verify makes the whole message ignored: a forger
must not get the fallback either. What each verdict does:

The server's answer is read as the same answer at RCPT time would be
(newsletter.providers.smtp_replies; docs/ARCHITECTURE.md, "Failures"):

- hard (about the address: X.1.x, X.2.1 disabled, a bare 550 without policy words, or the
  library's permanent verdict): the delivery failed, the address suppressed with the reason;
- soft (4.x.x, delayed, X.2.2 mailbox full and the mailbox's other troubles): counted, and
  the address suppressed once NEWSLETTER_SOFT_BOUNCE_LIMIT copies bounced within 30 days;
- refused (about us or the message: policy, content, reputation, routing): recorded for
  the operator, nobody suppressed: the next copy to anyone would meet the same;
- complaint (ARF Feedback-Type: abuse): the subscriber complained, the address suppressed;
- auto-reply, unrecognised, forged: recorded and counted, nothing else.

Each message is remembered by its Message-ID: seen again, it changes nothing. The caller
owns the transaction (one per message).
"""

from __future__ import annotations

import datetime as dt
import re

from sqlalchemy import distinct, func, select
from sqlalchemy.orm import Session

from newsletter.bounces.read import Failure, Notice
from newsletter.delivery import ledger
from newsletter.mail.failures import Cause
from newsletter.mail.verp import ForgedToken, Verp
from newsletter.providers.smtp_replies import smtp_cause
from newsletter.store.models import (
    Bounce,
    BounceKind,
    Delivery,
    DeliveryState,
    Subscriber,
    SubscriberStatus,
    utcnow,
)
from newsletter.store.suppression import leave_or_suppress

WINDOW = dt.timedelta(days=30)  # soft bounces counted, and deliveries matched, this far back
DUPLICATE = "duplicate"


def seen(session: Session, message_key: str) -> bool:
    return session.scalar(select(Bounce.id).where(Bounce.message_key == message_key)
                          .limit(1)) is not None


def apply(session: Session, notice: Notice, verp: Verp | None, soft_limit: int) -> list[str]:
    """What the message was, one kind per address it was about ("duplicate" if seen)."""
    if seen(session, notice.message_key):
        return [DUPLICATE]
    try:
        delivery_id = _token(verp, notice.return_paths)
    except ForgedToken as err:
        return [_record(session, notice, BounceKind.FORGED, detail=str(err))]
    if notice.kind == "complaint":
        return [_complaint(session, notice, delivery_id)]
    if notice.kind != "bounce":
        return [_record(session, notice, BounceKind(notice.kind))]
    targets = _targets(session, notice, delivery_id)
    if not targets:
        return [_record(session, notice, BounceKind.UNRECOGNISED,
                        detail="no delivery of ours matches: " +
                               ", ".join(f.address for f in notice.failures))]
    return [_bounce(session, notice, delivery, key, failure, soft_limit)
            for delivery, key, failure in targets]


def _token(verp: Verp | None, addresses: tuple[str, ...]) -> int | None:
    if verp is None:
        return None
    for address in addresses:
        delivery_id = verp.delivery_id(address)
        if delivery_id is not None:
            return delivery_id
    return None


def _targets(session: Session, notice: Notice,
             delivery_id: int | None) -> list[tuple[int, str, Failure]]:
    if delivery_id is not None:
        key = session.scalar(select(Subscriber.email_key).join(
            Delivery, Delivery.subscriber_id == Subscriber.id).where(Delivery.id == delivery_id))
        if key is None:
            return []  # the person was erased since: their address is suppressed already
        # One recipient per VERP copy; the report may name an alias it was forwarded to.
        failure = next((f for f in notice.failures if f.address == key), notice.failures[0])
        return [(delivery_id, key, failure)]
    found = []
    for failure in notice.failures:
        recent = _recent_delivery(session, failure.address)
        if recent is not None:
            found.append((recent, failure.address, failure))
    return found


def _recent_delivery(session: Session, email_key: str) -> int | None:
    return session.scalar(
        select(Delivery.id).join(Subscriber, Delivery.subscriber_id == Subscriber.id)
        .where(Subscriber.email_key == email_key,
               Delivery.state.in_([DeliveryState.SENT, DeliveryState.UNKNOWN,
                                   DeliveryState.FAILED]),
               Delivery.updated_at >= utcnow() - WINDOW)
        .order_by(Delivery.id.desc()).limit(1))


def verdict(failure: Failure) -> BounceKind:
    """Hard, soft or refused: the remote server's answer read as a refusal at RCPT time
    would be (newsletter.providers.smtp_replies, the one reading of RFC 3463 codes)."""
    if not failure.permanent:
        return BounceKind.SOFT
    if failure.status and not failure.status.endswith(".0.0"):
        cause = smtp_cause(550, failure.status, "rcpt")
    else:  # no specific enhanced code: the basic one the server wrote, if any
        basic = _BASIC.match(failure.detail)
        if basic is None:
            return BounceKind.HARD  # the library's permanent verdict, nothing more to read
        cause = smtp_cause(int(basic.group(1)), basic.group(2), "rcpt")
    return _VERDICT[cause]


_BASIC = re.compile(r"\s*([45]\d\d)[ -](.*)", re.S)
_VERDICT = {Cause.ADDRESS: BounceKind.HARD, Cause.RECIPIENT: BounceKind.SOFT,
            Cause.TRANSIENT: BounceKind.SOFT, Cause.MESSAGE: BounceKind.REFUSED,
            Cause.CONFIG: BounceKind.REFUSED, Cause.AMBIGUOUS: BounceKind.SOFT}


def _bounce(session: Session, notice: Notice, delivery_id: int, key: str, failure: Failure,
            soft_limit: int) -> str:
    kind = verdict(failure)
    why = f"bounced by mail: {failure.status or 'permanent'} {failure.detail}".strip()[:500]
    _record(session, notice, kind, key, delivery_id, failure.status, why)
    if kind == BounceKind.HARD:
        ledger.bounced(session, delivery_id, key, why)
        leave_or_suppress(session, key, SubscriberStatus.BOUNCED, why)
    elif kind == BounceKind.SOFT:
        copies = session.scalar(select(func.count(distinct(Bounce.delivery_id))).where(
            Bounce.email_key == key, Bounce.kind == BounceKind.SOFT,
            Bounce.received_at >= utcnow() - WINDOW))
        if copies >= soft_limit:
            leave_or_suppress(session, key, SubscriberStatus.BOUNCED,
                              f"{copies} soft bounces within 30 days, the last: {why}"[:500])
    return kind.value


def _complaint(session: Session, notice: Notice, delivery_id: int | None) -> str:
    if notice.feedback_type != "abuse":  # not-spam, virus, auth-failure...: not a complaint
        return _record(session, notice, BounceKind.UNRECOGNISED,
                       detail=f"feedback report of type {notice.feedback_type or 'none'}")
    key = None
    if delivery_id is not None:
        key = session.scalar(select(Subscriber.email_key).join(
            Delivery, Delivery.subscriber_id == Subscriber.id).where(Delivery.id == delivery_id))
    elif notice.complainant and _recent_delivery(session, notice.complainant) is not None:
        key = notice.complainant
    if key is None:
        return _record(session, notice, BounceKind.UNRECOGNISED,
                       detail="complaint about no delivery of ours")
    why = "complaint: an abuse report (ARF) from the recipient's provider"
    _record(session, notice, BounceKind.COMPLAINT, key, delivery_id, None, why)
    leave_or_suppress(session, key, SubscriberStatus.COMPLAINED, why)
    return BounceKind.COMPLAINT.value


def _record(session: Session, notice: Notice, kind: BounceKind, key: str = "",
            delivery_id: int | None = None, status: str | None = None,
            detail: str | None = None) -> str:
    session.add(Bounce(message_key=notice.message_key, email_key=key, delivery_id=delivery_id,
                       kind=kind, status=status or None, detail=detail))
    session.flush()
    return kind.value
