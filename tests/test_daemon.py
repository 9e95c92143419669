"""The daemon: reconcile passes on a controlled clock (time-machine), the real APScheduler
wiring, two daemons at once, and SIGTERM mid-send in a real process."""

from __future__ import annotations

import datetime as dt
import email.parser
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import time_machine
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from jobs.daemon import Daemon
from jobs.housekeeping import housekeeping
from jobs.reconcile import Reconciler
from newsletter.delivery import tally
from newsletter.delivery.edition import find_edition
from newsletter.settings import Settings, load_settings
from newsletter.store.db import make_engine
from newsletter.store.models import Delivery, DeliveryState, EditionStatus, Run, Subscriber
from tests.conftest import SEED

NY = "America/New_York"
DAY = dt.date(2024, 6, 12)
SPRING, FALL = dt.date(2024, 3, 10), dt.date(2024, 11, 3)  # New York's 2024 DST days
PEOPLE = 3


def ny(day: dt.date, hour: int, minute: int = 0) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hour, minute), tzinfo=ZoneInfo(NY))


def make_settings(**overrides: object) -> Settings:
    values = {"timezone": NY, "send_time": "06:00", "catchup_hours": 6, **overrides}
    return load_settings(**values)


@pytest.fixture
def world(env, cli, engine, tmp_path):
    """A database with a few confirmed subscribers (each test adds its stories)."""
    add_people(cli, tmp_path, PEOPLE)
    return engine


def add_people(cli, folder: Path, count: int) -> None:
    people = folder / "people.csv"
    people.write_text("email\n" + "".join(f"p{n:03}@example.com\n" for n in range(count)))
    assert cli("subscribers", "import", str(people), "--confirmed").exit_code == 0


def add_stories(cli, day: dt.date) -> None:
    assert cli("stories", "import", str(SEED), "--date", day.isoformat()).exit_code == 0


def received(settings: Settings) -> Counter:
    """Copies in the outbox, by recipient."""
    parser = email.parser.BytesHeaderParser()
    return Counter(parser.parsebytes(p.read_bytes())["To"]
                   for p in settings.outbox_dir.glob("*.eml"))


def edition_status(engine, day: dt.date) -> EditionStatus | None:
    with Session(engine) as session:
        edition = find_edition(session, day)
        return edition.status if edition else None


def test_a_send_missed_while_down_goes_out_when_the_daemon_is_back(world, cli):
    settings = make_settings()
    add_stories(cli, DAY)
    with time_machine.travel(ny(DAY, 9), tick=False):  # down at 06:00, back at 09:00
        report = Reconciler(settings, world, threading.Event())()
    assert report is not None and report.complete and report.date == DAY
    assert received(settings) == {f"p{n:03}@example.com": 1 for n in range(PEOPLE)}
    assert edition_status(world, DAY) == EditionStatus.COMPLETE
    with Session(world) as session:
        run = session.scalars(select(Run)).one()
    assert (run.kind, run.edition_date, run.outcome) == ("schedule", DAY, "complete")


def test_nothing_starts_before_the_send_time_or_after_the_window(world, cli, caplog):
    settings = make_settings()
    add_stories(cli, DAY)
    reconcile = Reconciler(settings, world, threading.Event())
    for instant in (ny(DAY, 5, 59), ny(DAY, 12, 1)):  # the window is 06:00-12:00
        with time_machine.travel(instant, tick=False):
            assert reconcile() is None
    assert edition_status(world, DAY) is None
    assert f"edition {DAY} was not sent and its catch-up window closed at " \
           f"{DAY}T12:00:00-04:00" in caplog.text


def test_a_day_without_stories_sends_nothing_then_late_stories_go_out(world, cli, caplog):
    settings = make_settings()
    reconcile = Reconciler(settings, world, threading.Event())
    for instant in (ny(DAY, 6), ny(DAY, 6, 5)):
        with time_machine.travel(instant, tick=False):
            assert reconcile() is None
    assert edition_status(world, DAY) is None  # nothing marked done
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        f"no stories for {DAY} yet: nothing sent; checking again until {DAY}T12:00:00-04:00"]

    add_stories(cli, DAY)
    with time_machine.travel(ny(DAY, 11, 55), tick=False):
        report = reconcile()
    assert report is not None and report.complete
    assert sum(received(settings).values()) == PEOPLE


def test_a_restart_sends_nothing_again(world, cli, caplog):
    caplog.set_level(logging.INFO, logger="jobs")
    settings = make_settings()
    add_stories(cli, DAY)
    with time_machine.travel(ny(DAY, 6), tick=False):
        assert Reconciler(settings, world, threading.Event())() is not None
    with time_machine.travel(ny(DAY, 6, 1), tick=False):
        restarted = Reconciler(settings, world, threading.Event())
        assert restarted() is None
        assert restarted() is None
    assert sum(received(settings).values()) == PEOPLE
    assert caplog.text.count(f"edition {DAY} is complete: nothing to send") == 1


@pytest.mark.parametrize(("day", "send_time", "due_utc"), [
    (SPRING, "02:30", dt.datetime(2024, 3, 10, 7, 0, tzinfo=dt.UTC)),   # skipped: 03:00 EDT
    (FALL, "01:30", dt.datetime(2024, 11, 3, 5, 30, tzinfo=dt.UTC)),    # twice: the first
], ids=["spring-forward", "fall-back"])
def test_dst_days_send_exactly_once(world, cli, day, send_time, due_utc):
    settings = make_settings(send_time=send_time)
    add_stories(cli, day)
    start = dt.datetime.combine(day, dt.time(0), tzinfo=settings.zone).astimezone(dt.UTC)
    sends = []
    with time_machine.travel(start, tick=False) as traveller:
        for step in range(0, 10 * 60, 10):  # every 10 minutes, 00:00 to 10:00, each a restart
            traveller.move_to(start + dt.timedelta(minutes=step))
            report = Reconciler(settings, world, threading.Event())()
            if report is not None:
                sends.append((dt.datetime.now(dt.UTC), report.date))
    assert sends == [(due_utc, day)]
    assert sum(received(settings).values()) == PEOPLE


def test_two_daemons_at_once_send_each_copy_once(env, cli, tmp_path):
    people = 60
    add_people(cli, tmp_path, people)
    add_stories(cli, DAY)
    settings = make_settings(batch_size=5)
    engines = [make_engine(env["NEWSLETTER_DATABASE_URL"]) for _ in range(2)]
    start = threading.Barrier(2)
    reports = []

    def daemon(own_engine) -> None:
        start.wait()
        reports.append(Reconciler(settings, own_engine, threading.Event())())

    with time_machine.travel(ny(DAY, 6, 0), tick=True):
        threads = [threading.Thread(target=daemon, args=(e,)) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    for own in engines:
        own.dispose()
    copies = received(settings)
    assert len(copies) == people and set(copies.values()) == {1}
    # Both ran; one may have found every copy already claimed by the other (a fast first
    # daemon on a small list) and sent nothing: that is a pass that did nothing, not an error.
    assert len(reports) == 2 and any(reports)
    assert sum(r.progress.sent for r in reports if r is not None) == people


def test_housekeeping_expires_leases_and_sign_ups_never_confirmed(world, cli, caplog):
    settings = make_settings()
    add_stories(cli, DAY)
    with time_machine.travel(ny(DAY, 6), tick=False):
        Reconciler(settings, world, threading.Event())()
    with Session(world) as session, session.begin():  # as if a sender died mid-batch
        first = session.scalars(select(Delivery.id).limit(1)).one()
        session.execute(update(Delivery).where(Delivery.id == first).values(
            state=DeliveryState.SENDING, lease_until=dt.datetime(2024, 6, 12, tzinfo=dt.UTC)))
    with time_machine.travel(ny(DAY, 1) - dt.timedelta(days=8), tick=False):
        cli("subscribers", "add", "stale@example.com")
    with time_machine.travel(ny(DAY, 1) - dt.timedelta(days=6), tick=False):
        cli("subscribers", "add", "recent@example.com")

    with time_machine.travel(ny(DAY, 7), tick=False):
        housekeeping(world)
    with Session(world) as session:
        emails = set(session.scalars(select(Subscriber.email)))
        edition = find_edition(session, DAY)
        assert tally.counts(session, edition.id)["unknown"] == 1
    assert "stale@example.com" not in emails
    assert {"recent@example.com", "p000@example.com"} <= emails
    assert "1 deliveries turned unknown" in caplog.text


def test_status_shows_the_next_run_by_the_daemons_clock(env, cli, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_TIMEZONE", NY)
    monkeypatch.setenv("NEWSLETTER_SEND_TIME", "02:30")
    with time_machine.travel(ny(SPRING, 1), tick=False):
        shown = cli("status", "--json").stdout
    assert '"next_run": "2024-03-10T03:00:00-04:00"' in shown


# The real APScheduler: time-machine moves the clock it reads; its waits are real seconds.

def run_in_thread(daemon: Daemon) -> threading.Thread:
    thread = threading.Thread(target=daemon.run, name="daemon")
    thread.start()
    return thread


def stop(daemon: Daemon, thread: threading.Thread) -> None:
    daemon.request_stop()
    thread.join(10)
    assert not thread.is_alive(), "the daemon did not stop"


def wait_for(predicate, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_scheduler_wakes_at_a_spring_forward_slot(world, cli):
    settings = make_settings(send_time="02:30")
    add_stories(cli, SPRING)
    # 01:59:58 EST; the slot is 03:00 EDT, two real seconds later.
    with time_machine.travel(dt.datetime(2024, 3, 10, 6, 59, 58, tzinfo=dt.UTC), tick=True):
        daemon = Daemon(settings, world, check_every=3600)  # only the slot can wake it
        thread = run_in_thread(daemon)
        try:
            time.sleep(0.5)
            assert edition_status(world, SPRING) is None  # the start-up check: not due yet
            wait_for(lambda: edition_status(world, SPRING) == EditionStatus.COMPLETE)
        finally:
            stop(daemon, thread)
    with Session(world) as session:
        run = session.scalars(select(Run)).one()
    assert run.started_at >= dt.datetime(2024, 3, 10, 7, 0, tzinfo=dt.UTC)
    assert sum(received(settings).values()) == PEOPLE


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_periodic_check_sends_stories_that_arrive_while_it_runs(world, cli, caplog):
    settings = make_settings()
    with time_machine.travel(ny(DAY, 7), tick=True):
        daemon = Daemon(settings, world, check_every=0.2)
        thread = run_in_thread(daemon)
        try:
            wait_for(lambda: "no stories for" in caplog.text)
            add_stories(cli, DAY)
            wait_for(lambda: edition_status(world, DAY) == EditionStatus.COMPLETE)
        finally:
            stop(daemon, thread)
    assert sum(received(settings).values()) == PEOPLE


def test_sigterm_mid_send_stops_cleanly_and_loses_nothing(env, cli, engine, tmp_path):
    people = 60
    add_people(cli, tmp_path, people)
    send_time = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=2)
    day = send_time.date()  # the slot's date (UTC here), even just after midnight
    settings = make_settings(timezone="UTC", send_time=f"{send_time:%H:%M}")
    add_stories(cli, day)
    process_env = {**os.environ, "NEWSLETTER_SEND_TIME": f"{send_time:%H:%M}",
                   "NEWSLETTER_BATCH_SIZE": "5", "NEWSLETTER_RATE_LIMIT": "20"}  # ~3 s
    log = (tmp_path / "daemon.log").open("w")
    daemon = subprocess.Popen([sys.executable, "-m", "newsletter", "schedule"],
                              env=process_env, stderr=log, stdout=log)
    try:
        wait_for(lambda: sum(received(settings).values()) >= 10, 30)
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(10) == 0
    finally:
        daemon.kill()
        log.close()
    sent = sum(received(settings).values())
    with Session(engine) as session:
        counts = tally.counts(session, find_edition(session, day).id)
    assert 10 <= sent < people
    assert counts == {**counts, "sent": sent, "pending": people - sent, "sending": 0,
                      "unknown": 0}
    assert "INFO jobs.daemon: stopped" in (tmp_path / "daemon.log").read_text()

    report = Reconciler(settings, engine, threading.Event())()  # the next start resumes
    assert report is not None and report.complete
    copies = received(settings)
    assert len(copies) == people and set(copies.values()) == {1}


def test_housekeeping_spares_a_returning_reader_who_just_signed_up_again(world, cli):
    from subscribers import signup

    with time_machine.travel(ny(DAY, 1) - dt.timedelta(days=30), tick=False):
        cli("subscribers", "add", "back@example.com", "--confirmed")
    with Session(world) as session, session.begin():
        session.execute(update(Subscriber).where(Subscriber.email_key == "back@example.com")
                        .values(status="unsubscribed"))
    with time_machine.travel(ny(DAY, 1), tick=False), Session(world) as session, \
            session.begin():
        signup.request(session, "back@example.com", None, ip="192.0.2.1")
    with time_machine.travel(ny(DAY, 7), tick=False):
        housekeeping(world)
    with Session(world) as session:  # kept, as they were, until they follow the new link
        assert session.scalar(select(Subscriber.status)
                              .where(Subscriber.email_key == "back@example.com")) == "unsubscribed"


def test_a_past_day_without_stories_is_not_reported_as_missed(world, caplog):
    reconcile = Reconciler(make_settings(), world, threading.Event())
    with time_machine.travel(ny(DAY, 12, 1), tick=False):  # a fresh install, after the window
        assert reconcile() is None
    assert "catch-up window closed" not in caplog.text
