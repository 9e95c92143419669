"""The mail queue against a real SMTP server: sent, retried with backoff, refused for good,
expired after a day; drained by `outbox drain`, the daemon and `serve`; shown by `status`."""

from __future__ import annotations

import datetime as dt
import json
import threading

import pytest
from sqlalchemy import select, update

from jobs.daemon import Daemon
from newsletter.delivery.mail_drain import MailDrain
from newsletter.store import mail_queue
from newsletter.store.db import make_engine
from newsletter.store.models import MailState, QueuedMail
from subscribers import service
from tests.smtp_sink import SmtpFake, free_port, running
from tests.webapp import sessions


@pytest.fixture
def engine(settings):
    engine = make_engine(settings.database_url)
    yield engine
    engine.dispose()


def queue_for(settings, *emails: str) -> list[int]:
    with sessions(settings).begin() as session:
        people = [service.add(session, email) for email in emails]
        for person in people:
            mail_queue.enqueue(session, mail_queue.CONFIRM, person.id)
        return [p.id for p in people]


def rows(settings) -> list[QueuedMail]:
    with sessions(settings)() as session:
        return list(session.scalars(select(QueuedMail).order_by(QueuedMail.id)))


def smtp_settings(settings, port: int):
    return settings.model_copy(update={"transport": "smtp", "smtp_host": "127.0.0.1",
                                       "smtp_port": port, "smtp_timeout": 5.0})


def test_sent_refused_and_retried_each_get_their_fate(settings, engine):
    fake = SmtpFake()
    fake.rcpt_script = {"busy@example.org": ["451 4.3.0 try again later"],
                        "gone@example.org": ["550 5.1.1 no such user"]}
    queue_for(settings, "ok@example.org", "busy@example.org", "gone@example.org")
    with running(fake) as server:
        report = MailDrain(smtp_settings(settings, server.port), engine).drain()
        assert report.counts["sent"] == 1 and report.counts["failed"] == 1
        assert report.counts["queued"] == 1  # to retry
        ok, busy, gone = rows(settings)
        assert ok.state == MailState.SENT and fake.recipients() == ["ok@example.org"]
        assert gone.state == MailState.FAILED and "5.1.1" in gone.error
        assert busy.state == MailState.QUEUED and "4.3.0" in busy.error
        wait = busy.next_attempt_at - dt.datetime.now(dt.UTC)
        assert dt.timedelta(seconds=50) < wait <= dt.timedelta(seconds=60)  # backoff
        assert MailDrain(smtp_settings(settings, server.port), engine).drain().counts[
            "sent"] == 0  # not due yet

        with sessions(settings).begin() as session:  # a minute later
            session.execute(update(QueuedMail).values(next_attempt_at=dt.datetime.now(dt.UTC)))
        MailDrain(smtp_settings(settings, server.port), engine).drain()
        assert rows(settings)[1].state == MailState.SENT
        assert sorted(fake.recipients()) == ["busy@example.org", "ok@example.org"]


def test_a_dead_server_keeps_the_mail_queued_then_it_expires_after_a_day(settings, engine):
    queue_for(settings, "reader@example.org")
    dead = smtp_settings(settings, free_port())  # nothing listens there
    assert MailDrain(dead, engine).drain().counts["queued"] == 1
    [row] = rows(settings)
    assert (row.state, row.attempts) == (MailState.QUEUED, 1) and row.error

    with sessions(settings).begin() as session:  # a day and a bit later
        session.execute(update(QueuedMail).values(
            created_at=dt.datetime.now(dt.UTC) - dt.timedelta(days=1, minutes=1),
            next_attempt_at=dt.datetime.now(dt.UTC)))
    with running() as server:
        MailDrain(smtp_settings(settings, server.port), engine).drain()
        assert server.handler.messages == []
    [row] = rows(settings)
    assert row.state == MailState.EXPIRED and "expired after a day" in row.error


def test_backoff_doubles_up_to_an_hour():
    assert [mail_queue.retry_in(n).total_seconds() for n in (1, 2, 3, 7, 20)] == [
        60, 120, 240, 3600, 3600]


def test_a_claim_whose_drainer_died_is_queued_again(settings, engine):
    queue_for(settings, "reader@example.org")
    [claimed] = mail_queue.claim(engine, 10, lease_seconds=1)
    assert mail_queue.claim(engine, 10, lease_seconds=1) == []  # held
    with sessions(settings).begin() as session:
        session.execute(update(QueuedMail).values(
            lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    assert [c.id for c in mail_queue.claim(engine, 10, lease_seconds=60)] == [claimed.id]


def test_a_slow_drainer_cannot_undo_what_the_next_one_did(settings, engine):
    queue_for(settings, "a@example.com")
    [slow] = mail_queue.claim(engine, 10, lease_seconds=60)
    with engine.begin() as conn:  # its lease runs out mid-send
        conn.execute(update(QueuedMail).values(
            lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)))
    [fast] = mail_queue.claim(engine, 10, lease_seconds=60)
    mail_queue.record(engine, [mail_queue.Outcome(fast, MailState.SENT)])
    mail_queue.record(engine, [mail_queue.Outcome(slow, MailState.QUEUED, "451 later")])
    assert [(r.state, r.error) for r in rows(settings)] == [(MailState.SENT, None)]


def test_outbox_drain_and_status(cli, settings):
    queue_for(settings, "a@example.org", "b@example.org")
    status = json.loads(cli("status", "--json").stdout)
    assert status["mail_queue"]["queued"] == 2 and status["mail_queue"]["oldest_queued"]
    assert "2 queued" in cli("status").stdout

    result = cli("outbox", "drain")
    assert result.exit_code == 0 and "sent 2" in result.stdout
    status = json.loads(cli("status", "--json").stdout)
    assert (status["mail_queue"]["queued"], status["mail_queue"]["sent"]) == (0, 2)


def test_the_daemon_drains_the_queue_within_seconds(settings, engine, monkeypatch):
    monkeypatch.setattr("jobs.daemon.DRAIN_EVERY", 0.2)
    daemon = Daemon(settings, engine, check_every=3600)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        queue_for(settings, "reader@example.org")
        for _ in range(100):
            if rows(settings)[0].state == MailState.SENT:
                break
            threading.Event().wait(0.1)
        assert rows(settings)[0].state == MailState.SENT
    finally:
        daemon.request_stop()
        thread.join(timeout=20)
    assert not thread.is_alive()


def test_jittered_backoff_stays_in_the_upper_half_under_the_cap():
    from newsletter.backoff import backoff

    for attempt, whole in [(1, 2.0), (2, 4.0), (4, 16.0), (30, 300.0)]:
        delays = [backoff(attempt, 2.0, 300.0) for _ in range(200)]
        assert all(whole / 2 <= d <= whole for d in delays)
        assert len(set(delays)) > 1  # workers that failed together come back apart
