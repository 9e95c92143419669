"""`newsletter send` end to end on SQLite and PostgreSQL: everyone once, never twice, the
reasons recorded, the operator told."""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import time

import pytest
from sqlalchemy import select, update
from sqlalchemy.orm import Session
from werkzeug import Response

from newsletter.delivery import ledger
from newsletter.delivery.claim import RateLimiter
from newsletter.delivery.edition import freeze_edition
from newsletter.delivery.run import SendRun
from newsletter.errors import SendError
from newsletter.mail.links import Links
from newsletter.providers.sendgrid import SendGridTransport
from newsletter.settings import load_settings
from newsletter.store.models import Delivery, DeliveryState, Subscriber, Suppression
from tests.conftest import DAY

DATE = dt.date.fromisoformat(DAY)


def people(cli, *emails, confirmed=True):
    for address in emails:
        args = ["subscribers", "add", address] + (["--confirmed"] if confirmed else [])
        assert cli(*args).exit_code == 0


def status(cli) -> dict:
    return json.loads(cli("status", "--date", DAY, "--json").stdout)


def test_everyone_confirmed_gets_one_copy_and_a_rerun_sends_nothing(cli, day, env, tmp_path,
                                                                    settings, db):
    people(cli, "a@example.com", "B@Example.org", "c@example.net")
    people(cli, "pending@example.com", confirmed=False)
    people(cli, "gone@example.com")
    cli("subscribers", "remove", "gone@example.com")

    first = cli("send", "--date", DAY)
    assert first.exit_code == 0, first.output
    assert "sent 3 now (3 in all)" in first.stdout
    files = sorted((tmp_path / "outbox").glob("*.eml"))
    assert len(files) == 3

    links = Links(settings)
    with Session(db) as session:
        ids = dict(session.execute(select(Subscriber.email_key, Subscriber.id)).all())
    for path in files:
        raw = path.read_text()
        to = re.search(r"^To: (\S+)", raw, re.M).group(1).strip("<>").lower()
        url = links.unsubscribe_url(ids[to])
        assert f"List-Unsubscribe: <{url}>" in raw
        assert links.read_unsubscribe(url.rsplit("/", 1)[1]) == ids[to]

    again = cli("send", "--date", DAY)
    assert again.exit_code == 0 and "sent 0 now (3 in all)" in again.stdout
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3
    counts = status(cli)
    assert counts["sent"] == 3 and counts["edition"] == "complete" and counts["pending"] == 0


def test_a_day_without_stories_sends_nothing_and_says_so(cli, env, tmp_path):
    people(cli, "a@example.com")
    result = cli("send", "--date", "2001-01-01")
    assert result.exit_code == 1
    assert "no stories for 2001-01-01" in result.stderr
    assert not (tmp_path / "outbox").exists()
    assert json.loads(cli("status", "--date", "2001-01-01", "--json").stdout)["edition"] is None


def test_people_who_leave_after_the_freeze_are_skipped(cli, day, settings, db, tmp_path):
    people(cli, "stay@example.com", "leave@example.com")
    with Session(db) as session, session.begin():
        freeze_edition(session, settings, DATE)
    cli("subscribers", "remove", "leave@example.com")
    people(cli, "late@example.com")  # joined after the freeze: next edition
    assert cli("send", "--date", DAY).exit_code == 0
    counts = status(cli)
    assert counts["sent"] == 1  # the removed person's delivery row went with them
    assert [p.name.split("-")[1] for p in (tmp_path / "outbox").glob("*.eml")] == [
        "stay@example.com"]


def test_unsubscribed_after_freeze_is_marked_skipped(cli, day, settings, db):
    people(cli, "stay@example.com", "leave@example.com")
    with Session(db) as session, session.begin():
        freeze_edition(session, settings, DATE)
        session.execute(update(Subscriber).where(Subscriber.email_key == "leave@example.com")
                        .values(status="unsubscribed"))
    report = SendRun(settings, db).run(DATE)
    assert report.counts["sent"] == 1 and report.counts["skipped"] == 1


def test_smtp_transient_retried_permanent_recorded_and_suppressed(cli, day, smtp, monkeypatch,
                                                                  db):
    monkeypatch.setattr(ledger, "RETRY_BASE_SECONDS", 0.05)
    people(cli, "ok@example.com", "later@example.com", "nobody@example.com")
    smtp.rcpt_script["later@example.com"] = ["451 4.7.1 try again later"] * 2
    smtp.rcpt_script["nobody@example.com"] = ["550 5.1.1 no such user"] * 10
    result = cli("send", "--date", DAY)
    assert result.exit_code == 0, result.output
    assert sorted(smtp.recipients()) == ["later@example.com", "ok@example.com"]
    counts = status(cli)
    assert (counts["sent"], counts["failed"]) == (2, 1)
    with Session(db) as session:
        failed = session.scalar(select(Delivery).where(Delivery.state == DeliveryState.FAILED))
        assert "550" in failed.error and "no such user" in failed.error
        assert session.scalar(select(Suppression.reason)
                              .where(Suppression.email_key == "nobody@example.com")) == "bounced"
        assert session.scalar(select(Subscriber.status)
                              .where(Subscriber.email_key == "nobody@example.com")) == "bounced"
        later = session.scalar(select(Delivery.attempts).join(Subscriber).where(
            Subscriber.email_key == "later@example.com"))
        assert later == 3


def test_lease_expiry_makes_unknown_and_only_resend_unknown_resends(cli, day, settings, db,
                                                                     tmp_path):
    people(cli, *(f"p{n}@example.com" for n in range(5)))
    with Session(db, expire_on_commit=False) as session, session.begin():
        edition = freeze_edition(session, settings, DATE)
    # A sender that claimed two rows and died: its lease has run out.
    claimed = ledger.claim(db, edition.id, DATE, "dead-worker", 2, lease_seconds=-1,
                           host="example.org")
    assert len(claimed) == 2
    result = cli("send", "--date", DAY)
    assert result.exit_code == 3
    assert "2 deliveries may or may not have gone out" in result.stderr
    counts = status(cli)
    assert (counts["sent"], counts["unknown"], counts["edition"]) == (3, 2, "sending")
    assert len(list((tmp_path / "outbox").glob("*.eml"))) == 3

    resent = cli("send", "--date", DAY, "--resend-unknown")
    assert resent.exit_code == 0, resent.output
    assert status(cli)["sent"] == 5 and status(cli)["edition"] == "complete"


def test_claims_are_disjoint_between_concurrent_claimers(cli, day, settings, db):
    people(cli, *(f"p{n}@example.com" for n in range(60)))
    with Session(db, expire_on_commit=False) as session, session.begin():
        edition = freeze_edition(session, settings, DATE)
    taken: list[int] = []
    lock = threading.Lock()

    def claimer(name: str) -> None:
        while batch := ledger.claim(db, edition.id, DATE, name, 7, 60, "example.org"):
            with lock:
                taken.extend(c.delivery_id for c in batch)

    threads = [threading.Thread(target=claimer, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(taken) == 60 and len(set(taken)) == 60


def test_rate_limit_spaces_messages():
    limiter, stop = RateLimiter(40), threading.Event()
    start = time.monotonic()
    for _ in range(11):
        limiter.acquire(1, stop)
    assert time.monotonic() - start >= 10 / 40 * 0.9


def test_smtp_silence_after_data_parks_the_copy_as_unknown(cli, day, smtp, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SMTP_TIMEOUT", "0.5")
    people(cli, "slow@example.com", "fine@example.com")
    smtp.data_delays = [1.0]  # the first copy's DATA gets no answer in time
    result = cli("send", "--date", DAY)
    assert result.exit_code == 3
    counts = status(cli)
    assert (counts["unknown"], counts["sent"]) == (1, 1)  # not retried: never a silent resend


@pytest.fixture
def sendgrid(httpserver, monkeypatch):
    """Settings pointing at a local SendGrid stand-in; tiny backoff so outages are quick."""
    monkeypatch.setattr(ledger, "RETRY_BASE_SECONDS", 0.02)
    monkeypatch.setattr(ledger, "RETRY_CAP_SECONDS", 0.05)
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "sendgrid")
    monkeypatch.setenv("NEWSLETTER_ESP_API_KEY", "test-key")
    monkeypatch.setenv("NEWSLETTER_ESP_API_URL", httpserver.url_for("/").rstrip("/"))
    return lambda settings: SendGridTransport(settings, backoff_base=0.01, backoff_cap=0.02,
                                              max_attempts=2, sleep=lambda s: None)


def test_an_outage_past_the_retry_window_stops_the_run_and_loses_nothing(cli, day, db,
                                                                        httpserver, sendgrid,
                                                                        monkeypatch):
    monkeypatch.setenv("NEWSLETTER_RETRY_WINDOW", "1")
    people(cli, *(f"p{n}@example.com" for n in range(3)))
    httpserver.expect_request("/v3/mail/send").respond_with_data("down", status=503)
    settings = load_settings()
    with pytest.raises(SendError, match="longer than NEWSLETTER_RETRY_WINDOW .*HTTP 503"):
        SendRun(settings, db, transport_factory=sendgrid).run(DATE)
    assert len(httpserver.log) > 4  # it kept trying while the window lasted
    counts = status(cli)
    assert (counts["pending"], counts["failed"], counts["edition"]) == (3, 0, "sending")
    with Session(db) as session:
        assert set(session.scalars(select(Delivery.attempts))) == {0}  # outage costs nobody

    httpserver.clear()
    httpserver.expect_request("/v3/mail/send").respond_with_data(
        "", status=202, headers={"X-Message-Id": "sg-1"})
    report = SendRun(settings, db, transport_factory=sendgrid).run(DATE)
    assert report.complete and report.counts["sent"] == 3


def test_a_refused_key_stops_at_once_with_the_reason(cli, day, httpserver, sendgrid):
    people(cli, "a@example.com", "b@example.com")
    httpserver.expect_request("/v3/mail/send").respond_with_json(
        {"errors": [{"message": "The provided authorization grant is invalid"}]}, status=401)
    result = cli("send", "--date", DAY)
    assert result.exit_code == 1
    assert "sendgrid refused the API key (HTTP 401)" in result.stderr
    assert "NEWSLETTER_ESP_API_KEY" in result.stderr and "Traceback" not in result.output
    assert len(httpserver.log) == 1  # never retried
    counts = status(cli)
    assert (counts["pending"], counts["sending"], counts["sent"]) == (2, 0, 0)


def test_a_bad_transport_setting_fails_before_anything_is_frozen(cli, day, monkeypatch):
    people(cli, "a@example.com")
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "sendgrid")  # and no API key
    result = cli("send", "--date", DAY)
    assert result.exit_code == 1 and "NEWSLETTER_ESP_API_KEY is not set" in result.stderr
    assert status(cli)["edition"] is None


def test_rate_limited_claims_never_outlive_their_lease(cli, day, monkeypatch, db):
    monkeypatch.setenv("NEWSLETTER_RATE_LIMIT", "10")
    monkeypatch.setenv("NEWSLETTER_LEASE_SECONDS", "1")
    monkeypatch.setenv("NEWSLETTER_BATCH_SIZE", "50")
    people(cli, *(f"p{n}@example.com" for n in range(12)))
    settings = load_settings()
    done = threading.Event()

    def reaper() -> None:  # another process's `status` or daemon, expiring leases
        while not done.is_set():
            ledger.expire_leases(db)
            time.sleep(0.05)

    thread = threading.Thread(target=reaper)
    thread.start()
    try:
        started = time.monotonic()
        report = SendRun(settings, db).run(DATE, workers=2)
    finally:
        done.set()
        thread.join()
    assert time.monotonic() - started >= 0.9  # 12 messages at 10 a second
    assert (report.counts["sent"], report.counts["unknown"]) == (12, 0)


def test_a_timeout_mid_batch_parks_only_the_call_that_may_have_gone(cli, day, db, httpserver,
                                                                    monkeypatch):
    """Postmark splits a batch into calls; the 2nd times out after the request left."""
    from newsletter.providers import postmark

    monkeypatch.setattr(postmark, "PAYLOAD_LIMIT", 1)  # one message per call
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "postmark")
    monkeypatch.setenv("NEWSLETTER_ESP_API_KEY", "test-key")
    monkeypatch.setenv("NEWSLETTER_ESP_API_URL", httpserver.url_for("/").rstrip("/"))
    monkeypatch.setenv("NEWSLETTER_ESP_TIMEOUT", "0.5")
    people(cli, "a@example.com", "b@example.com", "c@example.com")
    calls = []

    def answer(request):
        calls.append(json.loads(request.data)[0]["To"])
        if len(calls) == 2:
            time.sleep(1)  # no answer in time: it may or may not have been taken
        return Response(json.dumps([{"ErrorCode": 0, "MessageID": f"pm-{len(calls)}"}]),
                        content_type="application/json")

    httpserver.expect_request("/email/batch").respond_with_handler(answer)
    result = cli("send", "--date", DAY)
    assert result.exit_code == 3
    counts = status(cli)
    assert (counts["sent"], counts["unknown"]) == (2, 1)  # c was released, then sent
    assert sorted(calls) == ["a@example.com", "b@example.com", "c@example.com"]  # no resend


def test_rate_limit_refunds_what_a_claim_did_not_use():
    limiter, stop = RateLimiter(10), threading.Event()
    limiter.acquire(50, stop)  # reserved 5 s of sending...
    limiter.refund(49)         # ...but the claim found one row
    start = time.monotonic()
    limiter.acquire(1, stop)
    assert time.monotonic() - start < 1.0


def test_unreadable_successes_park_their_batches_and_stop_the_run(cli, day, httpserver,
                                                                   monkeypatch):
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "postmark")
    monkeypatch.setenv("NEWSLETTER_ESP_API_KEY", "test-key")
    monkeypatch.setenv("NEWSLETTER_ESP_API_URL", httpserver.url_for("/").rstrip("/"))
    monkeypatch.setenv("NEWSLETTER_BATCH_SIZE", "1")
    people(cli, "a@example.com", "b@example.com", "c@example.com")
    httpserver.expect_request("/email/batch").respond_with_data("<html>proxy page</html>")
    result = cli("send", "--date", DAY)
    assert result.exit_code == 1
    assert "postmark answered HTTP 200 but not with JSON" in result.stderr
    assert "2 calls in a row" in result.stderr
    counts = status(cli)
    assert (counts["unknown"], counts["pending"], counts["sent"]) == (2, 1, 0)
    assert len(httpserver.log) == 2  # never resent


def test_a_stop_mid_run_leaves_only_the_batch_in_hand_spent(cli, day, db, httpserver, sendgrid,
                                                            monkeypatch):
    """A stop (SIGTERM) during a call: that batch is recorded, the rest stays pending with
    no attempt spent and nothing `sending` (no batch is claimed before the one in hand is
    done, so a killed sender leaves at most one batch `unknown`)."""
    monkeypatch.setenv("NEWSLETTER_BATCH_SIZE", "5")
    people(cli, *(f"p{n}@example.com" for n in range(20)))
    stop = threading.Event()

    def answer(request):
        time.sleep(0.3)
        stop.set()  # SIGTERM during the first call
        return Response("", status=202, headers={"X-Message-Id": "sg-1"})

    httpserver.expect_request("/v3/mail/send").respond_with_handler(answer)
    report = SendRun(load_settings(), db, stop=stop).run(DATE)
    assert report.stopped
    assert (report.counts["sent"], report.counts["pending"], report.counts["sending"]) == (5, 15, 0)
    with Session(db) as session:
        attempts = session.scalars(select(Delivery.attempts).where(
            Delivery.state == DeliveryState.PENDING)).all()
    assert attempts == [0] * 15
    assert len(httpserver.log) == 1


def test_a_settled_edition_sends_again_without_reaching_the_provider(cli, day, monkeypatch):
    """Everyone has a fate: a rerun says so and exits 0, even with the relay down (it
    used to connect first and fail with "cannot talk to SMTP server")."""
    people(cli, "a@example.com")
    assert cli("send", "--date", DAY).exit_code == 0
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "smtp")
    monkeypatch.setenv("NEWSLETTER_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("NEWSLETTER_SMTP_PORT", "9")  # nothing listens there
    again = cli("send", "--date", DAY)
    assert again.exit_code == 0, again.output
    assert "sent 0 now (1 in all)" in again.stdout
