"""Housekeeping at every check: expired leases become `unknown`, stale sign-ups go.

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
from newsletter.store.models import Subscriber, SubscriberStatus, utcnow

log = logging.getLogger(__name__)
# A sign-up older than its confirmation link can never be confirmed.
UNCONFIRMED_MAX_AGE = dt.timedelta(seconds=CONFIRM_MAX_AGE)


def housekeeping(engine: Engine, now: dt.datetime | None = None) -> None:
    expired = ledger.expire_leases(engine)
    if expired:
        log.warning("%d deliveries turned unknown: their sender stopped mid-batch (lease "
                    "expired); `newsletter status` shows them", expired)
    cutoff = (now or utcnow()) - UNCONFIRMED_MAX_AGE
    removed = forget_unconfirmed(engine, cutoff)
    if removed:
        log.info("removed %d sign-ups made before %s and never confirmed", removed,
                 cutoff.isoformat(timespec="seconds"))


def forget_unconfirmed(engine: Engine, before: dt.datetime) -> int:
    """Delete subscribers pending since before `before` (the last sign-up request, not the
    first: a returning reader's new link gets its full week). Deleted, not suppressed: they
    never consented, so nothing of them is kept, and they may sign up again; a suppression
    from an earlier unsubscribe stays."""
    with Session(engine) as session, session.begin():
        return session.execute(delete(Subscriber).where(
            Subscriber.status == SubscriberStatus.PENDING,
            Subscriber.status_changed_at < before)).rowcount
