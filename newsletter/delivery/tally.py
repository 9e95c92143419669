"""An edition's deliveries counted by state: live from the ledger, or the counts kept when
`newsletter prune` deleted its rows.

Core statements on newsletter.store.tables, no ORM: `status` and `health` count without
loading it (tests/test_cli_startup.py). They run on a Connection or an ORM Session alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import Connection, Row, func, select

from newsletter.store.leases import expired_by_edition
from newsletter.store.tables import DeliveryState, deliveries

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

STATES = [s.value for s in DeliveryState]


def counts(db: Connection | Session, edition_id: int) -> dict[str, int]:
    found = dict(db.execute(select(deliveries.c.state, func.count())
                            .where(deliveries.c.edition_id == edition_id)
                            .group_by(deliveries.c.state)).all())
    return {state: found.get(DeliveryState(state), 0) for state in STATES}


def edition_counts(conn: Connection, edition: Row) -> dict[str, int]:
    """Counts by state: rolled up if the edition was pruned, else live from the ledger,
    with rows whose lease ran out shown as `unknown` (what the next check makes them).
    From an ORM session, pass `session.connection()`."""
    if edition.counts is not None:
        return {state: edition.counts.get(state, 0) for state in STATES}
    found = counts(conn, edition.id)
    if found["sending"]:
        gone = expired_by_edition(conn, edition.id)
        found["sending"] -= gone
        found["unknown"] += gone
    return found
