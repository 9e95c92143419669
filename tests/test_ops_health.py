"""`newsletter health`, the daemon's metrics port, and the store's gauges, on SQLite and
PostgreSQL: what a monitoring script sees as the day goes right or wrong."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import time
import urllib.request

import pytest
import sqlalchemy as sa
import time_machine
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update
from sqlalchemy.orm import Session

from newsletter.store.db import make_engine
from newsletter.store.leases import clock
from newsletter.store.mail_queue import CONFIRM
from newsletter.store.models import (
    Delivery,
    DeliveryState,
    MailState,
    QueuedMail,
    Subscriber,
)
from tests.conftest import SEED
from tests.test_web_serve import free_port

DAY = dt.date(2031, 5, 6)


def at(hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(DAY, dt.time(hour, minute), tzinfo=dt.UTC)


@pytest.fixture
def day(env, cli, tmp_path, monkeypatch):
    """Three confirmed subscribers; the send time 06:00 UTC."""
    monkeypatch.setenv("NEWSLETTER_SEND_TIME", "06:00")
    people = tmp_path / "people.csv"
    people.write_text("email\n" + "".join(f"h{n}@example.com\n" for n in range(3)))
    assert cli("subscribers", "import", str(people), "--confirmed").exit_code == 0
    return cli


def health(cli, when: dt.datetime) -> tuple[int, dict]:
    with time_machine.travel(when, tick=False):
        result = cli("health", "--json")
    return result.exit_code, json.loads(result.stdout)


def check(report: dict, name: str) -> dict:
    return next(c for c in report["checks"] if c["name"] == name)


def test_a_good_day_is_healthy(day):
    assert day("stories", "import", str(SEED), "--date", DAY.isoformat()).exit_code == 0
    code, report = health(day, at(5))  # before the send time: yesterday had nothing to send
    assert code == 1 and "no stories were imported" in check(report, "edition")["detail"]
    with time_machine.travel(at(6, 1), tick=False):
        assert day("send", "--date", DAY.isoformat()).exit_code == 0
    code, report = health(day, at(7))
    assert code == 0 and report["ok"] is True and report["date"] == DAY.isoformat()
    assert check(report, "edition")["detail"] == f"edition {DAY} complete: 3 sent"
    assert {c["name"] for c in report["checks"]} == {"database", "schema", "edition", "leases",
                                                     "mail queue"}
    with time_machine.travel(at(7), tick=False):
        text = day("health")
    assert text.exit_code == 0 and "ok    edition: edition" in text.stdout


def test_a_missed_send_time_needs_a_person(day):
    code, report = health(day, at(6, 5))  # the daemon has a few minutes to start
    assert code == 0
    code, report = health(day, at(6, 30))
    assert code == 1 and report["ok"] is False
    assert check(report, "edition")["detail"] == (f"edition {DAY} was not sent: no stories "
                                                   "were imported for it")
    assert day("stories", "import", str(SEED), "--date", DAY.isoformat()).exit_code == 0
    code, report = health(day, at(6, 30))
    assert code == 1 and "is `newsletter schedule` running?" in check(report, "edition")["detail"]


def test_unknown_deliveries_and_dead_senders_need_a_person(day, engine):
    assert day("stories", "import", str(SEED), "--date", DAY.isoformat()).exit_code == 0
    with time_machine.travel(at(6, 1), tick=False):
        assert day("send", "--date", DAY.isoformat()).exit_code == 0
    with Session(engine) as session, session.begin():
        ids = list(session.scalars(sa.select(Delivery.id).order_by(Delivery.id)))
        # Its lease ran out by the database's clock, which is what leases go by (the
        # host's clock, travelled to 2031 here, says nothing about them).
        session.execute(update(Delivery).where(Delivery.id == ids[0]).values(
            state=DeliveryState.SENDING, lease_until=clock(engine, -60)))
        session.execute(update(Delivery).where(Delivery.id == ids[1]).values(
            state=DeliveryState.UNKNOWN))
    code, report = health(day, at(7))
    assert code == 1
    assert check(report, "leases")["ok"] is False
    assert "1 deliveries are held by a sender whose lease ran out" in check(report, "leases")[
        "detail"]
    assert "1 deliveries of unknown fate" in check(report, "edition")["detail"]

    # A lease still running by the database's clock is a live sender's, however late the
    # host that asks thinks it is.
    with Session(engine) as session, session.begin():
        session.execute(update(Delivery).where(Delivery.id == ids[0]).values(
            lease_until=at(6, 2)))
    _, report = health(day, at(7))
    assert check(report, "leases")["ok"] is True


def test_an_old_schema_is_reported_never_upgraded(env, cli, monkeypatch, tmp_path):
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", url)
    result = cli("health", "--json")
    assert result.exit_code == 1
    [database, schema] = json.loads(result.stdout)["checks"]
    assert database["ok"] and not schema["ok"]
    assert "none (empty database)" in schema["detail"]
    engine = make_engine(url)
    assert sa.inspect(engine).get_table_names() == []  # health changed nothing
    engine.dispose()


def test_queued_mail_older_than_an_hour_needs_a_person(day, engine):
    """The mail queue (confirmations, fresh links): its oldest waiting email."""
    with Session(engine) as session, session.begin():
        person = session.scalar(sa.select(Subscriber.id).limit(1))
        session.add(QueuedMail(kind=CONFIRM, subscriber_id=person, created_at=at(1),
                               state=MailState.SENT, sent_at=at(1)))
        session.add(QueuedMail(kind=CONFIRM, subscriber_id=person, created_at=at(6, 40)))
    assert day("stories", "import", str(SEED), "--date", DAY.isoformat()).exit_code == 0
    with time_machine.travel(at(6, 1), tick=False):
        assert day("send", "--date", DAY.isoformat()).exit_code == 0
    code, report = health(day, at(7))
    assert code == 0 and check(report, "mail queue")["detail"] == "oldest queued at 06:40 UTC"
    code, report = health(day, at(7, 41))
    assert code == 1 and "queued mail has waited since 06:40 UTC" in check(
        report, "mail queue")["detail"]


def test_the_daemon_serves_metrics_on_its_port(env, day, tmp_path):
    assert day("stories", "import", str(SEED)).exit_code == 0
    port = free_port()
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")},
               **env, "NEWSLETTER_METRICS_PORT": str(port), "NEWSLETTER_SEND_TIME": "00:00",
               "NEWSLETTER_CATCHUP_HOURS": "23"}
    daemon = subprocess.Popen([sys.executable, "-m", "newsletter", "schedule",
                               "--reconcile-every", "0.5"], env=environ,
                              stderr=subprocess.PIPE, text=True)
    try:
        samples = {}
        deadline = time.monotonic() + 60
        while samples.get(("newsletter_send_runs_total", (("outcome", "complete"),))) != 1:
            assert daemon.poll() is None and time.monotonic() < deadline
            time.sleep(0.3)
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                              timeout=5).read().decode()
            except OSError:
                continue
            samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                       for family in text_string_to_metric_families(body)
                       for s in family.samples}
        assert samples[("newsletter_messages_total", (("result", "sent"),))] == 3
        assert samples[("newsletter_daemon_checks_total", (("result", "ok"),))] >= 1
        assert ("newsletter_subscribers", (("status", "confirmed"),)) in samples
        assert samples[("newsletter_provider_request_duration_seconds_count",
                        (("transport", "outbox"),))] == 1
    finally:
        daemon.terminate()
        assert daemon.wait(timeout=30) == 0
