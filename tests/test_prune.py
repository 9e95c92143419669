"""`newsletter prune`: old editions keep their counts, not a row per recipient (SQLite and
PostgreSQL). The daemon's daily prune: tests/test_daemon_volume.py."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.delivery.prune import prune
from newsletter.settings import load_settings
from newsletter.store.models import Delivery, Edition
from tests.conftest import SAMPLES

TODAY = load_settings(timezone="UTC").today()
OLD, RECENT = TODAY - dt.timedelta(days=120), TODAY - dt.timedelta(days=10)
PEOPLE = 5


@pytest.fixture
def sent(cli, engine):
    """Two editions sent to five people: one 120 days old, one 10 days old."""
    for n in range(PEOPLE):
        assert cli("subscribers", "add", f"p{n}@example.com", "--confirmed").exit_code == 0
    for day in (OLD, RECENT):
        assert cli("stories", "import", str(SAMPLES), "--date", day.isoformat()).exit_code == 0
        assert cli("send", "--date", day.isoformat()).exit_code == 0
    return engine


def rows(engine, day: dt.date) -> int:
    with Session(engine) as session:
        return session.scalar(select(func.count()).select_from(Delivery).join(Edition)
                              .where(Edition.date == day))


def status(cli, day: dt.date) -> dict:
    return json.loads(cli("status", "--date", day.isoformat(), "--json").stdout)


def test_prune_keeps_the_counts_of_the_editions_it_empties(cli, sent):
    before = status(cli, OLD)
    result = cli("prune", "--keep-days", "90")
    assert result.exit_code == 0, result.output
    assert f"pruned {PEOPLE} delivery rows of 1 editions older than 90 days" in result.stdout
    assert (rows(sent, OLD), rows(sent, RECENT)) == (0, PEOPLE)
    after = status(cli, OLD)
    assert (after["sent"], after["total"], after["edition"]) == (PEOPLE, PEOPLE, "complete")
    assert {k: after[k] for k in ("pending", "sent", "failed", "unknown")} == {
        k: before[k] for k in ("pending", "sent", "failed", "unknown")}
    again = cli("prune", "--keep-days", "90")
    assert "pruned 0 delivery rows of 0 editions" in again.stdout


def test_prune_deletes_in_small_batches(sent):
    report = prune(sent, 5, TODAY, batch=2)  # both editions, three deletes each
    assert (report.editions, report.rows) == (2, 2 * PEOPLE)
    with Session(sent) as session:
        kept = session.scalars(select(Edition.counts).order_by(Edition.date)).all()
    assert [c["sent"] for c in kept] == [PEOPLE, PEOPLE]


def test_keep_days_defaults_to_the_setting(cli, sent, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_KEEP_DAYS", "5")
    assert "of 2 editions older than 5 days" in cli("prune").stdout


def test_an_unfinished_edition_keeps_its_rows(cli, sent):
    # An old edition with a copy of unknown fate: the operator may still resend it.
    with Session(sent) as session, session.begin():
        edition = session.scalar(select(Edition).where(Edition.date == OLD))
        edition.status = "sending"
        session.execute(Delivery.__table__.update().where(
            Delivery.edition_id == edition.id).values(state="unknown"))
    assert prune(sent, 90, TODAY).editions == 0
    assert rows(sent, OLD) == PEOPLE
