"""Housekeeping at every check: expired leases become `unknown`, stale sign-ups go, and so
do finished mail-queue rows and webhook replay keys once nothing needs them.

Transient failures need no job of their own: they stay `pending` with a retry time, and
the next reconcile pass resumes the edition (jobs.reconcile).
"""

from __future__ import annotations

import datetime as dt
import logging

from sqlalchemy import Engine, delete
from sqlalchemy.orm import Session

from newsletter.delivery import ledger
from newsletter.mail.links import CONFIRM_MAX_AGE
from newsletter.providers.webhooks import MAX_AGE_SECONDS
from newsletter.store.mail_queue import forget_done
from newsletter.store.models import Subscriber, SubscriberStatus, WebhookReplay, utcnow

log = logging.getLogger(__name__)
# A sign-up older than its confirmation link can never be confirmed.
UNCONFIRMED_MAX_AGE = dt.timedelta(seconds=CONFIRM_MAX_AGE)
# A finished email stays while its confirmation link works (the name asked for with the
# sign-up is applied on confirming), and a day more for `status`.
MAIL_KEPT = UNCONFIRMED_MAX_AGE + dt.timedelta(days=1)
# A replay key outlives the age limit of the post it came with: older posts are refused
# by their timestamp alone. An hour's margin for clocks.
REPLAY_KEPT = dt.timedelta(seconds=MAX_AGE_SECONDS, hours=1)


def housekeeping(engine: Engine, now: dt.datetime | None = None) -> None:
    expired = ledger.expire_leases(engine)
    if expired:
        log.warning("%d deliveries turned unknown: their sender stopped mid-batch (lease "
                    "expired); `newsletter status` shows them", expired)
    now = now or utcnow()
    cutoff = now - UNCONFIRMED_MAX_AGE
    removed = forget_unconfirmed(engine, cutoff)
    if removed:
        log.info("removed %d sign-ups made before %s and never confirmed", removed,
                 cutoff.isoformat(timespec="seconds"))
    with Session(engine) as session, session.begin():
        forget_done(session, now - MAIL_KEPT)
        session.execute(delete(WebhookReplay).where(WebhookReplay.seen_at < now - REPLAY_KEPT))


def forget_unconfirmed(engine: Engine, before: dt.datetime) -> int:
    """Delete subscribers pending since before `before` (the last sign-up request, not the
    first: a returning reader's new link gets its full week). Deleted, not suppressed: they
    never consented, so nothing of them is kept, and they may sign up again; a suppression
    from an earlier unsubscribe stays."""
    with Session(engine) as session, session.begin():
        return session.execute(delete(Subscriber).where(
            Subscriber.status == SubscriberStatus.PENDING,
            Subscriber.status_changed_at < before)).rowcount
