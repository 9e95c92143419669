"""A real `newsletter send` as an operator runs it, watched the way operations watch it: the
alert a local webhook receives, the log lines on stderr (text and JSON), and the run's
metrics parsed with prometheus_client's own parser."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading

import pytest
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from werkzeug import Request, Response

from jobs.reconcile import Reconciler
from newsletter.delivery.run import SendRun
from newsletter.ops.metrics import RUNS
from newsletter.settings import load_settings
from tests.conftest import SEED

PEOPLE = 10
SECRET = "test-secret-key-not-for-production"


def postmark(refuse: set[int]):
    """Postmark's batch answer: ErrorCode 406 (inactive recipient) for those numbers."""
    def handler(request: Request) -> Response:
        answers = []
        for i, message in enumerate(request.get_json()):
            number = int(message["To"].split("@")[0].removeprefix("p"))
            answers.append({"ErrorCode": 406, "Message": "Inactive recipient", "To": message["To"]}
                           if number in refuse else
                           {"ErrorCode": 0, "Message": "OK", "MessageID": f"pm-{i}",
                            "To": message["To"]})
        return Response(json.dumps(answers), 200, content_type="application/json")
    return handler


@pytest.fixture
def world(env, cli, tmp_path, httpserver):
    people = tmp_path / "people.csv"
    people.write_text("email\n" + "".join(f"p{n:03}@example.com\n" for n in range(PEOPLE)))
    assert cli("subscribers", "import", str(people), "--confirmed").exit_code == 0
    assert cli("stories", "import", str(SEED)).exit_code == 0
    return {**env, "NEWSLETTER_TRANSPORT": "postmark", "NEWSLETTER_ESP_API_KEY": "pm-key-123",
            "NEWSLETTER_ESP_API_URL": f"http://{httpserver.host}:{httpserver.port}",
            "NEWSLETTER_ALERT_WEBHOOK_URL": httpserver.url_for("/hooks/alerts")}


def send(world, *args: str, **extra: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    return subprocess.run([sys.executable, "-m", "newsletter", *args], capture_output=True,
                          text=True, timeout=120, env={**environ, **world, **extra})


def alerts(httpserver) -> list[str]:
    return [r.get_json()["text"] for r, _ in httpserver.log if r.path == "/hooks/alerts"]


def test_a_clean_send_alerts_nobody_and_logs_json_with_the_run_fields(world, httpserver):
    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(postmark(set()))
    httpserver.expect_request("/hooks/alerts", method="POST").respond_with_data("ok")
    done = send(world, "-v", "send", NEWSLETTER_LOG_FORMAT="json")
    assert done.returncode == 0, done.stderr
    assert "edition" in done.stdout and "sent 10 now" in done.stdout  # the result: stdout
    lines = [json.loads(line) for line in done.stderr.splitlines()]  # every line an object
    assert all({"time", "level", "logger", "message"} <= set(line) for line in lines)
    steps = [line["message"] for line in lines]
    assert any(m.startswith("claimed 10 deliveries") for m in steps)
    assert any(m.startswith("batch of 10 sent to postmark") for m in steps)
    assert any(m == "recorded: 10 queued" for m in steps)
    finished = next(line for line in lines if line["message"].startswith("run finished"))
    assert finished["edition"] == finished["message"].split()[3].rstrip(":")
    assert isinstance(finished["run_id"], int) and finished["counts"]["sent"] == PEOPLE
    assert all(line.get("run_id") == finished["run_id"] for line in lines
               if line["logger"].startswith("newsletter.delivery"))
    assert "pm-key-123" not in done.stderr and SECRET not in done.stderr
    assert "@example.com" not in done.stderr  # addresses only at debug level
    assert alerts(httpserver) == []


def test_text_logs_carry_no_colour_off_a_terminal(world, httpserver):
    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(postmark({3}))
    httpserver.expect_request("/hooks/alerts", method="POST").respond_with_data("ok")
    done = send(world, "-vv", "send")
    assert "\x1b[" not in done.stderr, done.stderr
    assert "INFO newsletter.delivery.record: recorded: 1 failed (address), 9 queued [edition 20" \
        in done.stderr
    assert "p003@example.com" in done.stderr  # -vv: the refused address, at debug level


def test_an_edition_with_too_many_failures_alerts_once(world, httpserver):
    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(
        postmark({1, 4}))
    httpserver.expect_request("/hooks/alerts", method="POST").respond_with_data("ok")
    done = send(world, "send")
    assert done.returncode == 0, done.stderr
    [text] = alerts(httpserver)
    assert "finished with 2 failed and 0 unknown of 10 deliveries (20.0%" in text
    assert "NEWSLETTER_ALERT_FAILED_PERCENT=2" in text
    assert send(world, "send").returncode == 0  # nothing left to send: no second message
    assert len(alerts(httpserver)) == 1


def test_failures_under_the_threshold_alert_nobody(world, httpserver):
    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(
        postmark({1, 4}))
    httpserver.expect_request("/hooks/alerts", method="POST").respond_with_data("ok")
    assert send(world, "send", NEWSLETTER_ALERT_FAILED_PERCENT="20").returncode == 0
    assert alerts(httpserver) == []  # 20% is not above 20%


def test_a_stopped_run_alerts_with_its_reason(world, httpserver):
    httpserver.expect_request("/email/batch", method="POST").respond_with_json(
        {"ErrorCode": 10, "Message": "Bad or missing Server API token."}, status=401)
    httpserver.expect_request("/hooks/alerts", method="POST").respond_with_data("ok")
    done = send(world, "send")
    assert done.returncode == 1 and "refused the API key" in done.stderr
    [text] = alerts(httpserver)
    assert "stopped: postmark refused the API key (HTTP 401)" in text
    assert "pm-key-123" not in text


def test_a_failing_alert_never_breaks_a_send(world, httpserver):
    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(
        postmark({1, 2, 3}))
    httpserver.expect_request("/hooks/alerts", method="POST").respond_with_data("no", 500)
    done = send(world, "send")
    assert done.returncode == 0 and "sent 7 now" in done.stdout
    assert "alert not delivered to the webhook (HTTPError)" in done.stderr
    assert "/hooks/alerts" not in done.stderr  # the webhook URL is a credential
    unreachable = send(world, "send", NEWSLETTER_ALERT_WEBHOOK_URL="http://127.0.0.1:9/x")
    assert unreachable.returncode == 0


def test_the_daemon_alerts_when_the_send_time_passes_without_stories(env, cli, httpserver):
    import datetime as dt

    import time_machine

    from newsletter.store.db import make_engine

    httpserver.expect_request("/hooks/alerts", method="POST").respond_with_data("ok")
    settings = load_settings(alert_webhook_url=httpserver.url_for("/hooks/alerts"),
                             send_time="06:00", catchup_hours=2)
    engine = make_engine(env["NEWSLETTER_DATABASE_URL"])
    reconcile = Reconciler(settings, engine, threading.Event())
    day = dt.date(2031, 5, 6)  # no stories that day
    for hour in (5, 6, 7):
        with time_machine.travel(dt.datetime(2031, 5, 6, hour, 1, tzinfo=dt.UTC), tick=False):
            reconcile()
    [text] = alerts(httpserver)  # once, at the send time, not at every check
    assert f"send time of edition {day} passed without sending: no stories yet" in text
    engine.dispose()


def test_a_run_records_its_metrics(world, httpserver, settings):
    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(
        postmark({2}))
    before = values(RUNS)
    settings = load_settings(transport="postmark", esp_api_key="pm-key-123",
                             esp_api_url=f"http://{httpserver.host}:{httpserver.port}")
    from newsletter.store.db import make_engine

    engine = make_engine(world["NEWSLETTER_DATABASE_URL"])
    report = SendRun(settings, engine).run_recorded(settings.today(), "send")
    engine.dispose()
    after = values(RUNS)

    def grew(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    assert report.complete
    assert grew("newsletter_messages_total", result="queued") == 9
    assert grew("newsletter_messages_total", result="failed") == 1
    assert grew("newsletter_delivery_failures_total", **{"class": "address"}) == 1
    assert grew("newsletter_send_runs_total", outcome="complete") == 1
    assert grew("newsletter_send_run_duration_seconds_count") == 1
    assert grew("newsletter_provider_request_duration_seconds_count", transport="postmark") == 1


def values(registry) -> dict:
    """Every sample of the registry's exposition, parsed back with prometheus_client."""
    text = generate_latest(registry).decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_a_completed_editions_counts_are_kept_between_scrapes(world, httpserver, monkeypatch):
    """The store's gauges count a finished edition once per COMPLETE_TTL, not per scrape;
    past it (a late bounce) the new figures show."""
    import sqlalchemy as sa

    from newsletter.ops import metrics
    from newsletter.store.db import make_engine
    from newsletter.store.models import Delivery, DeliveryState

    httpserver.expect_request("/email/batch", method="POST").respond_with_handler(postmark(set()))
    assert send(world, "send").returncode == 0
    engine = make_engine(world["NEWSLETTER_DATABASE_URL"])
    try:
        store = metrics.registry(engine, runs=False)
        today = load_settings().today().isoformat()

        def sent() -> float:
            return values(store)[("newsletter_deliveries", (("edition", today),
                                                            ("state", "sent")))]
        assert sent() == PEOPLE
        with engine.begin() as conn:  # a bounce after the edition completed
            conn.execute(sa.update(Delivery).where(Delivery.id == sa.select(
                sa.func.min(Delivery.id)).scalar_subquery()).values(state=DeliveryState.FAILED))
        assert sent() == PEOPLE  # kept
        monkeypatch.setattr(metrics, "COMPLETE_TTL", 0.0)
        assert sent() == PEOPLE - 1
    finally:
        engine.dispose()
