"""On PostgreSQL with a large ledger (generated in SQL, then ANALYZE): erasing a subscriber,
`status` counts, lease expiry and renewal read through indexes, never a sequential scan of
deliveries. The statements checked are the ones the code really sends, caught on the wire."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.orm import Session

from newsletter.delivery import ledger
from newsletter.delivery.edition import find_edition
from newsletter.delivery.tally import edition_counts
from newsletter.store.db import make_engine, upgrade
from newsletter.store.leases import renew
from subscribers import service

pytestmark = pytest.mark.postgres
EDITIONS, PEOPLE = 30, 8_000  # 240,000 delivery rows

LEDGER = f"""
INSERT INTO subscribers (email, email_key, status, created_at, status_changed_at)
SELECT 'p' || n || '@example.com', 'p' || n || '@example.com', 'confirmed', now(), now()
FROM generate_series(1, {PEOPLE}) AS n;
INSERT INTO editions (date, subject, content, status, created_at)
SELECT DATE '2026-01-01' + n, 'Edition ' || n, '{{}}', 'complete', now()
FROM generate_series(1, {EDITIONS}) AS n;
INSERT INTO deliveries (edition_id, subscriber_id, state, attempts, sent_at)
SELECT e.id, s.id, 'sent', 1, now() FROM editions e CROSS JOIN subscribers s;
UPDATE deliveries SET state = 'sending', claimed_by = 'w', lease_until = now() - interval '1 s'
WHERE edition_id = (SELECT max(id) FROM editions) AND subscriber_id <= 50;
ANALYZE;
"""


@pytest.fixture(scope="module")
def big(postgres_url):
    engine = make_engine(postgres_url)
    upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE deliveries, editions, subscribers, suppressions "
                             "RESTART IDENTITY CASCADE")
        conn.exec_driver_sql(LEDGER)
    yield engine
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE deliveries, editions, subscribers, suppressions "
                             "RESTART IDENTITY CASCADE")
    engine.dispose()


def plans(engine: sa.Engine, action) -> list[str]:
    """EXPLAIN of every statement `action` sends (caught, then explained unexecuted)."""
    sent: list[tuple[str, object]] = []

    def catch(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(("SELECT", "UPDATE", "DELETE")):
            sent.append((statement, parameters))

    sa.event.listen(engine, "before_cursor_execute", catch)
    try:
        action()
    finally:
        sa.event.remove(engine, "before_cursor_execute", catch)
    with engine.connect() as conn:
        cursor = conn.connection.cursor()
        explained = []
        for statement, parameters in sent:
            cursor.execute("EXPLAIN " + statement, parameters)
            explained.append("\n".join(row[0] for row in cursor.fetchall()))
        conn.rollback()
    return explained


def no_seq_scan(explained: list[str], *indexes: str) -> None:
    assert explained
    assert not any("Seq Scan on deliveries" in plan for plan in explained), explained
    assert any(index in plan for plan in explained for index in indexes), explained


def test_status_counts_use_the_edition_state_index(big):
    def status() -> None:  # as `newsletter status` reads
        with big.connect() as conn:
            edition = find_edition(conn, dt.date(2026, 1, 20))
            assert edition_counts(conn, edition)["sent"] == PEOPLE
    no_seq_scan(plans(big, status), "ix_deliveries_edition_state_id")


def test_lease_expiry_and_renewal_read_only_leased_rows(big):
    def expire_and_renew() -> None:
        assert ledger.expire_leases(big) == 50
        renew(big, "w", 300)
    no_seq_scan(plans(big, expire_and_renew), "ix_deliveries_leased")


def test_erasing_a_subscriber_finds_their_deliveries_by_index(big):
    def erase() -> None:
        with Session(big) as session, session.begin():
            service.remove(session, "p77@example.com")
    explained = plans(big, erase)
    # ON DELETE CASCADE runs this for each erased person (PostgreSQL's RI trigger).
    with big.connect() as conn:
        cascade = "\n".join(conn.exec_driver_sql(
            "EXPLAIN DELETE FROM deliveries WHERE subscriber_id = 78").scalars())
    no_seq_scan([*explained, cascade], "uq_deliveries_subscriber_edition")
