"""The daemon at volume: it prunes once a day and sends with NEWSLETTER_SEND_WORKERS."""

from __future__ import annotations

import datetime as dt
import logging
import threading

from jobs.daemon import Daemon
from jobs.reconcile import Reconciler
from newsletter.delivery.run import SendRun
from newsletter.settings import load_settings
from tests.conftest import SAMPLES
from tests.test_prune import OLD, PEOPLE, rows, sent  # noqa: F401 - the `sent` fixture


def test_the_daemon_prunes_once_a_day(sent, env, caplog, monkeypatch):  # noqa: F811
    monkeypatch.setenv("NEWSLETTER_KEEP_DAYS", "30")
    daemon = Daemon(load_settings(), sent)
    with caplog.at_level(logging.INFO, logger="jobs.daemon"):
        daemon._prune_daily()
        daemon._prune_daily()
    assert caplog.text.count(f"pruned {PEOPLE} delivery rows of 1 editions") == 1
    assert rows(sent, OLD) == 0


def test_the_daemon_sends_with_the_configured_workers(cli, engine, monkeypatch):
    monkeypatch.setenv("NEWSLETTER_SEND_WORKERS", "3")
    today = load_settings(timezone="UTC").today()
    assert cli("stories", "import", str(SAMPLES), "--date", today.isoformat()).exit_code == 0
    assert cli("subscribers", "add", "a@example.com", "--confirmed").exit_code == 0
    seen, run = [], SendRun.run

    def spy(self, date, **options):
        seen.append(options.get("workers"))
        return run(self, date, **options)

    monkeypatch.setattr(SendRun, "run", spy)
    now = dt.datetime.combine(today, dt.time(6, 1), tzinfo=dt.UTC)
    report = Reconciler(load_settings(), engine, threading.Event())(now)
    assert report is not None and report.complete and seen == [3]
