"""Leases on the database's clock, renewed while a batch is in flight; a result comes in
only while the lease is still the sender's (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.delivery import ledger
from newsletter.delivery.edition import freeze_edition
from newsletter.delivery.run import SendRun
from newsletter.mail.failures import Cause
from newsletter.mail.message import Recipient, Result
from newsletter.settings import load_settings
from newsletter.store.leases import clock
from newsletter.store.models import Delivery
from tests.conftest import DAY, SAMPLES
from tests.smtp_sink import running

DATE = dt.date.fromisoformat(DAY)


@pytest.fixture
def edition(cli, settings, db):
    assert cli("stories", "import", str(SAMPLES), "--date", DAY).exit_code == 0
    for n in range(4):
        assert cli("subscribers", "add", f"p{n}@example.com", "--confirmed").exit_code == 0
    with Session(db, expire_on_commit=False) as session, session.begin():
        return freeze_edition(session, settings, DATE)


def states(db) -> dict[int, str]:
    with Session(db) as session:
        return dict(session.execute(select(Delivery.id, Delivery.state)).all())


def test_a_host_whose_clock_runs_ahead_expires_nobody_early(edition, db, monkeypatch):
    claimed = ledger.claim(db, edition.id, DATE, "worker-a", 2, lease_seconds=300,
                           host="example.org")
    with Session(db) as session:
        ends = session.scalars(select(Delivery.lease_until).where(
            Delivery.id.in_([c.delivery_id for c in claimed]))).all()
        now = session.scalar(select(clock(db)))
    assert all(dt.timedelta(seconds=295) < end - now <= dt.timedelta(seconds=301)
               for end in ends)
    # Another host's Python clock is an hour ahead: its housekeeping must not matter.
    ahead = dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)
    monkeypatch.setattr(ledger, "utcnow", lambda: ahead)
    assert ledger.expire_leases(db) == 0
    assert sorted(states(db).values()) == ["pending", "pending", "sending", "sending"]


def test_an_expired_lease_turns_unknown_on_the_database_clock(edition, db):
    ledger.claim(db, edition.id, DATE, "dead-worker", 2, lease_seconds=-1, host="example.org")
    assert ledger.expire_leases(db) == 2
    assert sorted(states(db).values()) == ["pending", "pending", "unknown", "unknown"]


def test_status_shows_lapsed_leases_as_unknown_and_writes_nothing(edition, db, cli):
    ledger.claim(db, edition.id, DATE, "dead-worker", 2, lease_seconds=-1, host="example.org")
    counts = json.loads(cli("status", "--date", DAY, "--json").stdout)
    assert (counts["pending"], counts["sending"], counts["unknown"]) == (2, 0, 2)
    failures = json.loads(cli("status", "--date", DAY, "--failures", "--json").stdout)
    assert [(f["answer"], f["count"]) for f in failures["failures"]] == [
        (ledger.LEASE_EXPIRED, 2)]
    assert {d["state"] for d in failures["failures"][0]["deliveries"]} == {"unknown"}
    # Only read: the rows turn unknown at the next send or check, not here.
    assert sorted(states(db).values()) == ["pending", "pending", "sending", "sending"]


def test_a_batch_slower_than_its_lease_is_renewed_and_recorded_sent(edition, db, monkeypatch):
    """Each message takes longer than the whole lease; a reaper expires leases meanwhile
    (another process's `send` or the daemon). Without renewal the rows turn unknown."""
    with running() as server:
        server.handler.delay = 1.5
        for key, value in {"TRANSPORT": "smtp", "SMTP_HOST": "127.0.0.1",
                           "SMTP_PORT": str(server.port), "LEASE_SECONDS": "1",
                           "BATCH_SIZE": "2"}.items():
            monkeypatch.setenv(f"NEWSLETTER_{key}", value)
        done, expired = threading.Event(), []

        def reaper() -> None:
            while not done.is_set():
                expired.append(ledger.expire_leases(db))
                time.sleep(0.05)

        thread = threading.Thread(target=reaper)
        thread.start()
        try:
            report = SendRun(load_settings(), db).run(DATE)
        finally:
            done.set()
            thread.join()
    assert (report.counts["sent"], report.counts["unknown"]) == (4, 0)
    assert len(expired) > 20 and sum(expired) == 0  # never declared dead while sending


def test_a_result_for_rows_another_sender_holds_is_not_recorded(edition, db, caplog):
    slow = ledger.claim(db, edition.id, DATE, "slow-worker", 1, lease_seconds=-1,
                        host="example.org")
    ledger.expire_leases(db)
    ledger.requeue_unknown(db, edition.id)  # the operator resends the unknown row
    again = ledger.claim(db, edition.id, DATE, "new-worker", 1, lease_seconds=300,
                         host="example.org")
    assert again[0].delivery_id == slow[0].delivery_id
    late = Result(Recipient(slow[0].email, None, {}, delivery_id=slow[0].delivery_id),
                  "failed", error="550 5.1.1 no such user", cause=Cause.ADDRESS)
    with caplog.at_level(logging.WARNING, logger="newsletter.delivery.ledger"):
        assert ledger.record(db, "slow-worker", [late]) == 1
    assert states(db)[slow[0].delivery_id] == "sending"  # still the new sender's
    assert "1 of 1 results were not recorded" in caplog.text
