"""Bounded growth: old editions keep their counts, not one row per recipient.

At a million subscribers the ledger gains a million rows a day. `newsletter prune` (and the
daemon, once a day) first rolls each old edition's counts by state into its `editions` row,
then deletes its deliveries in small batches, each its own short transaction, so senders
and readers never wait long behind it. A prune stopped half-way resumes where it left off:
the counts are rolled once, and the deletes go on.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import Engine, delete, exists, or_, select, update
from sqlalchemy.orm import Session

from newsletter.delivery import tally
from newsletter.store.models import Delivery, Edition, EditionStatus, utcnow

BATCH = 5000  # rows per delete: ~50 ms on PostgreSQL here, so locks stay short


@dataclass(frozen=True)
class PruneReport:
    editions: int
    rows: int


def prune(engine: Engine, keep_days: int, today: dt.date, batch: int = BATCH) -> PruneReport:
    """Delete the per-recipient rows of complete editions dated before today - keep_days.
    An edition still holding pending or unknown copies is kept whole: `send --resend-unknown`
    or `--retry-failed` may still need its rows (`newsletter status --date D` shows it)."""
    cutoff = today - dt.timedelta(days=keep_days)
    with Session(engine) as session:
        old = session.scalars(select(Edition.id).where(
            Edition.date < cutoff, Edition.status == EditionStatus.COMPLETE,
            or_(Edition.pruned_at.is_(None),
                                       exists().where(Delivery.edition_id == Edition.id)))
            .order_by(Edition.date)).all()
    rows = 0
    for edition_id in old:
        _roll_up(engine, edition_id)
        rows += _delete_rows(engine, edition_id, batch)
    return PruneReport(len(old), rows)


def _roll_up(engine: Engine, edition_id: int) -> None:
    with Session(engine) as session, session.begin():
        edition = session.get(Edition, edition_id)
        if edition.counts is None:  # rolled once; a resumed prune keeps the first count
            session.execute(update(Edition).where(Edition.id == edition_id).values(
                counts=tally.counts(session, edition_id), pruned_at=utcnow()))


def _delete_rows(engine: Engine, edition_id: int, batch: int) -> int:
    deleted = 0
    while True:
        some = (select(Delivery.id).where(Delivery.edition_id == edition_id)
                .limit(batch).scalar_subquery())
        with Session(engine) as session, session.begin():
            count = session.execute(delete(Delivery).where(Delivery.id.in_(some))
                                    .execution_options(synchronize_session=False)).rowcount
        deleted += count
        if count < batch:
            return deleted
