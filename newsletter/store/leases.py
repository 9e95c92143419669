"""Leases on the database's clock, renewed while a batch is in flight.

A claim's lease ends at the database's `now()` plus NEWSLETTER_LEASE_SECONDS, and expiry
compares with that same clock, so hosts whose clocks disagree cannot expire each other's
batches early. SQLite has no server, but its `strftime('now')` is the one clock every
process sharing the file reads; it is written in SQLAlchemy's own text format for SQLite
datetimes (`YYYY-MM-DD HH:MM:SS.ffffff`, UTC), so values written from Python and from SQL
compare as strings and load back the same.

While a worker sends a batch, a heartbeat thread pushes its leases forward every third of
the lease, so a slow provider never makes a live sender's batch `unknown`. Expiry and
renewal touch only leased rows, through the partial index `ix_deliveries_leased`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading

from sqlalchemy import ColumnElement, Connection, Engine, func, select, update

from newsletter.store.tables import DeliveryState, UTCDateTime, deliveries

log = logging.getLogger(__name__)
SQLITE_FORMAT = "%Y-%m-%d %H:%M:%f000"  # %f is SS.SSS: padded to SQLAlchemy's microseconds


def clock(engine: Engine | Connection, seconds: float = 0) -> ColumnElement:
    """The database's current time, plus `seconds`, as an SQL expression."""
    if engine.dialect.name == "sqlite":
        return func.strftime(SQLITE_FORMAT, "now", f"{seconds:+.3f} seconds",
                             type_=UTCDateTime)
    return func.now() + dt.timedelta(seconds=seconds)


def lapsed(engine: Engine | Connection) -> tuple:
    """Rows under a lease that has run out (the partial index's own predicate first)."""
    return (deliveries.c.state == DeliveryState.SENDING,
            deliveries.c.lease_until < clock(engine))


def expired_by_edition(conn: Connection, edition_id: int) -> int:
    """How many of an edition's rows are under a lease that ran out, without writing: a
    read-only `status` shows them as `unknown` (the next send or check turns them so)."""
    return conn.scalar(select(func.count()).select_from(deliveries).where(
        *lapsed(conn), deliveries.c.edition_id == edition_id)) or 0


def renew(engine: Engine, worker: str, lease_seconds: int) -> int:
    """Push this worker's leases forward; how many rows it still holds."""
    with engine.begin() as conn:
        return conn.execute(update(deliveries).where(
            deliveries.c.state == DeliveryState.SENDING, deliveries.c.claimed_by == worker)
            .values(lease_until=clock(engine, lease_seconds))).rowcount


class Heartbeat:
    """A thread renewing a worker's leases every third of the lease until stopped."""

    def __init__(self, engine: Engine, worker: str, lease_seconds: int):
        self.engine, self.worker, self.lease_seconds = engine, worker, lease_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease-{worker}",
                                        daemon=True)

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._stop.wait(self.lease_seconds / 3):
            try:
                renew(self.engine, self.worker, self.lease_seconds)
            except Exception as err:  # noqa: BLE001 - the send itself reports a lost database
                log.warning("could not renew the leases of %s: %s", self.worker, err)
