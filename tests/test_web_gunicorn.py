"""Subscriber safety under gunicorn with two workers, on PostgreSQL and the real Redis:
what one process cannot show (shared limits, replay keys seen by every worker, sign-up
that neither leaks nor blocks while the mail server is dead)."""

from __future__ import annotations

import json
import random
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from sqlalchemy import func, select

from newsletter.mail.links import Links
from newsletter.settings import load_settings
from newsletter.store.db import make_engine, session_factory, upgrade
from newsletter.store.models import (
    QueuedMail,
    Subscriber,
    SubscriberStatus,
    Suppression,
    WebhookReplay,
)
from newsletter.store.suppression import leave_or_suppress
from subscribers import service
from tests.conftest import _empty
from tests.gunicorn_server import gunicorn, silent_port
from tests.test_webhooks import mailgun_signature, sendgrid_keys, sendgrid_sign

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
CATEGORIES = ("new", "pending", "confirmed", "unsubscribed", "complained")


@pytest.fixture
def pg(postgres_url):
    """The session's PostgreSQL database, upgraded and empty; its session factory."""
    engine = make_engine(postgres_url)
    upgrade(engine)
    _empty(engine)
    yield postgres_url, session_factory(engine)
    engine.dispose()


def test_sign_up_answers_alike_at_once_while_the_mail_server_is_dead(pg, tmp_path):
    url, sessions = pg
    with sessions.begin() as session:
        service.add(session, "pending@example.org")
        service.add(session, "confirmed@example.org", confirmed=True)
        for email, status in (("unsubscribed@example.org", SubscriberStatus.UNSUBSCRIBED),
                              ("complained@example.org", SubscriberStatus.COMPLAINED)):
            leave_or_suppress(session, service.add(session, email, confirmed=True).email_key,
                              status)
    with silent_port() as dead, gunicorn(
            tmp_path, url, NEWSLETTER_TRANSPORT="smtp", NEWSLETTER_SMTP_HOST="127.0.0.1",
            NEWSLETTER_SMTP_PORT=str(dead), NEWSLETTER_SMTP_TIMEOUT="30",
            NEWSLETTER_SIGNUP_RATE_LIMIT="100000/hour") as server:
        cookies, csrf = server.form("/subscribe")
        # Without Redis every worker counts alone: start-up says so.
        assert "NEWSLETTER_REDIS_URL" in server.error_log.read_text()

        def sign_up(category: str, n: int) -> tuple[float, int, str]:
            email = f"new{n}@example.org" if category == "new" else f"{category}@example.org"
            start = time.perf_counter()
            answer = server.post("/subscribe", {"email": email, "name": "A. Reader",
                                                "csrf_token": csrf}, cookies)
            return time.perf_counter() - start, answer.status_code, answer.text

        for n in range(10):  # warm both workers up (templates, database connections)
            sign_up(CATEGORIES[n % len(CATEGORIES)], 1000 + n)
        sent = 10
        for attempt in range(3):  # a loaded machine adds noise; a real leak shows every time
            times = {c: [] for c in CATEGORIES}
            pages = set()
            order = [(c, n) for n in range(40) for c in CATEGORIES]
            random.shuffle(order)
            for category, n in order:
                took, status, page = sign_up(category, n + 100 * attempt)
                assert status == 200
                times[category].append(took)
                pages.add(page)
            sent += len(order)
            assert len(pages) == 1  # the same page, byte for byte
            # A dead mail server holds no worker: every answer came at once.
            assert max(max(t) for t in times.values()) < 2.0
            medians = {c: statistics.median(t) for c, t in times.items()}
            spread = max(medians.values()) - min(medians.values())
            print(f"sign-up medians (ms): { {c: round(m * 1000, 1) for c, m in medians.items()} }")
            if spread < max(0.005, 0.25 * min(medians.values())):
                break
        else:
            pytest.fail(f"sign-up time depends on the address: medians {medians}")
    with sessions() as session:  # each sign-up queued its email; none was sent inline
        assert session.scalar(select(func.count()).select_from(QueuedMail)) == sent
        assert session.scalar(select(Subscriber.name).where(
            Subscriber.email_key == "pending@example.org")) is None


def test_the_sign_up_limit_is_shared_by_both_workers_through_redis(pg, redis_url, tmp_path):
    url, sessions = pg
    with gunicorn(tmp_path, url, NEWSLETTER_REDIS_URL=redis_url,
                  NEWSLETTER_SIGNUP_RATE_LIMIT="5/hour") as server:
        assert "NEWSLETTER_REDIS_URL" not in server.error_log.read_text()
        cookies, csrf = server.form("/subscribe")

        def sign_up(n: int) -> int:
            return server.post("/subscribe", {"email": f"r{n}@example.org",
                                              "csrf_token": csrf}, cookies).status_code

        statuses: list[int] = []
        with ThreadPoolExecutor(8) as pool:
            for round_ in range(20):  # until both workers have taken posts (bounded)
                statuses += pool.map(sign_up, range(24 * round_, 24 * (round_ + 1)))
                if len(server.pids("POST", "/subscribe")) == 2:
                    break
        assert len(server.pids("POST", "/subscribe")) == 2  # both workers took posts
        # However the posts fell on the two workers, the limit was counted once, in Redis.
        assert sorted(statuses) == [200] * 5 + [429] * (len(statuses) - 5)
        assert server.post("/subscribe", {"email": "late@example.org", "csrf_token": csrf},
                           cookies).status_code == 429
    with sessions() as session:
        assert session.scalar(select(func.count()).select_from(Subscriber)) == 5


def test_webhook_replays_confirm_links_and_stale_posts_across_workers(pg, redis_url, tmp_path):
    url, sessions = pg
    private, public = sendgrid_keys()
    with sessions.begin() as session:
        reader = service.add(session, "reader@example.org", confirmed=True).id
        pending = service.add(session, "pending@example.org").id
    with gunicorn(tmp_path, url, NEWSLETTER_REDIS_URL=redis_url,
                  NEWSLETTER_MAILGUN_WEBHOOK_SIGNING_KEY="mg-key",
                  NEWSLETTER_SENDGRID_WEBHOOK_PUBLIC_KEY=public) as server:
        # One Mailgun post, sent ten times at once to both workers: applied exactly once.
        body = json.dumps({"signature": mailgun_signature("mg-key"), "event-data": {
            "event": "failed", "severity": "permanent", "recipient": "reader@example.org"}})
        post = lambda _: server.post(  # noqa: E731
            "/webhooks/mailgun", body, headers={"Content-Type": "application/json"}).status_code
        statuses = []
        with ThreadPoolExecutor(10) as pool:
            for _ in range(10):  # until both workers have had some (bounded)
                statuses += pool.map(post, range(10))
                if len(server.pids("POST", "/webhooks/mailgun")) == 2:
                    break
        assert len(server.pids("POST", "/webhooks/mailgun")) == 2
        assert sorted(statuses) == [200] + [401] * (len(statuses) - 1)
        with sessions() as session:
            assert session.scalar(select(func.count()).select_from(WebhookReplay)) == 1
            assert session.get(Subscriber, reader).status == SubscriberStatus.BOUNCED

        # A SendGrid post signed ten minutes ago is refused, a fresh one accepted.
        events = json.dumps([{"email": "pending@example.org", "event": "spamreport"}])
        for age, expected in ((600, 401), (0, 200)):
            stamp = str(int(time.time()) - age)
            answer = server.post("/webhooks/sendgrid", events, headers={
                "Content-Type": "application/json",
                "X-Twilio-Email-Event-Webhook-Signature": sendgrid_sign(
                    private, stamp, events.encode()),
                "X-Twilio-Email-Event-Webhook-Timestamp": stamp})
            assert answer.status_code == expected
        with sessions.begin() as session:
            assert session.scalar(select(Suppression.reason).where(
                Suppression.email_key == "pending@example.org")) == "complained"
            newcomer = service.add(session, "newcomer@example.org").id

        # A confirmation link: scanners' GET and HEAD, on either worker, change nothing.
        settings = load_settings(secret_key=server.env["NEWSLETTER_SECRET_KEY"],
                                 base_url=server.url, database_url=url)
        path = f"/confirm/{Links(settings).confirm_token(newcomer)}"
        scan = lambda _: (  # noqa: E731
            requests.head(server.url + path, timeout=10).status_code,
            requests.get(server.url + path, timeout=10).status_code)
        with ThreadPoolExecutor(6) as pool:
            for _ in range(10):
                assert set(pool.map(scan, range(12))) == {(200, 200)}
                if len(server.pids("GET", "/confirm/")) == 2:
                    break
        assert len(server.pids("GET", "/confirm/")) == 2
        with sessions() as session:
            assert session.get(Subscriber, newcomer).status == SubscriberStatus.PENDING
        cookies, csrf = server.form(path)
        answer = server.post(path, {"csrf_token": csrf}, cookies)
        assert answer.status_code == 200 and "You are subscribed" in answer.text
        with sessions() as session:
            assert session.get(Subscriber, newcomer).status == SubscriberStatus.CONFIRMED
            assert session.get(Subscriber, pending).status == SubscriberStatus.COMPLAINED
