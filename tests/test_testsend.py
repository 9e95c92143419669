"""`newsletter test-send`: fresh render, "[TEST] " subject, the configured transport, and
no edition or delivery state touched."""

from __future__ import annotations

import datetime as dt
import email
import sqlite3
from email import policy
from pathlib import Path

import sqlalchemy as sa

from newsletter.delivery import testsend
from newsletter.mail.links import TEST_SUBSCRIBER_ID, Links
from newsletter.store.models import Delivery, Edition
from tests.conftest import SEED
from tests.smtp_sink import SmtpFake, start_smtp

DAY = "2024-05-01"


def state(engine) -> tuple[int, int]:
    with engine.connect() as conn:
        return (conn.scalar(sa.select(sa.func.count()).select_from(Edition)),
                conn.scalar(sa.select(sa.func.count()).select_from(Delivery)))


def outbox_messages(env) -> list[email.message.EmailMessage]:
    return [email.message_from_bytes(p.read_bytes(), policy=policy.default)
            for p in sorted(Path(env["NEWSLETTER_OUTBOX_DIR"]).glob("*.eml"))]


def test_test_send_to_the_outbox_changes_no_state(cli, env, engine, settings):
    assert cli("stories", "import", str(SEED), "--date", DAY).exit_code == 0
    result = cli("test-send", "--date", DAY, "--to", "Editor@Example.com",
                 "--to", "editor@example.com", "--to", "desk@example.org")
    assert result.exit_code == 0, result.output
    assert "through outbox" in result.output and "desk@example.org" in result.output
    messages = outbox_messages(env)
    assert sorted(m["To"].addresses[0].addr_spec.lower() for m in messages) == [
        "desk@example.org", "editor@example.com"]
    unsubscribe = Links(settings).unsubscribe_url(TEST_SUBSCRIBER_ID)
    for message in messages:
        assert message["Subject"].startswith("[TEST] ")
        assert message["List-Unsubscribe"] == f"<{unsubscribe}>"
        text, html = message.get_payload()
        assert unsubscribe in text.get_content() and unsubscribe in html.get_content()
    assert state(engine) == (0, 0)


def test_default_recipients_and_smtp(cli, env, engine, monkeypatch):
    fake = SmtpFake()
    controller = start_smtp(fake)
    try:
        monkeypatch.setenv("NEWSLETTER_TRANSPORT", "smtp")
        monkeypatch.setenv("NEWSLETTER_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(controller.port))
        monkeypatch.setenv("NEWSLETTER_TEST_RECIPIENTS", "a@example.com, b@example.com")
        cli("stories", "import", str(SEED), "--date", DAY)
        result = cli("test-send", "--date", DAY)
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    assert [m.rcpt_tos for m in fake.messages] == [["a@example.com"], ["b@example.com"]]
    assert result.output.count("sent ") == 2
    assert state(engine) == (0, 0)


def test_no_addresses_or_no_stories_is_an_error_not_a_traceback(cli, env):
    result = cli("test-send", "--date", DAY)
    assert result.exit_code != 0 and "NEWSLETTER_TEST_RECIPIENTS" in result.output
    result = cli("test-send", "--date", DAY, "--to", "a@example.com")
    assert result.exit_code != 0 and "no stories" in result.output
    result = cli("test-send", "--date", DAY, "--to", "not an address")
    assert result.exit_code != 0 and "not an email address" in result.output


def test_the_service_returns_one_result_per_address(env, sessions, settings, cli):
    cli("stories", "import", str(SEED), "--date", DAY)
    results = testsend.test_send(sessions, settings, dt.date.fromisoformat(DAY),
                                 ["x@example.com"])
    assert [(r.recipient.email, r.status) for r in results] == [("x@example.com", "sent")]


class Probe(SmtpFake):
    """Looks at the database while a message is being handed over: is any transaction of
    the sender open (PostgreSQL), or is the write lock held (SQLite)?"""

    def __init__(self, db_url: str) -> None:
        super().__init__()
        self.db_url, self.busy = db_url, []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        self.busy.append(database_busy(self.db_url))
        return await super().handle_DATA(server, session, envelope)


def database_busy(db_url: str) -> bool:
    if db_url.startswith("sqlite"):
        conn = sqlite3.connect(db_url.removeprefix("sqlite:///"), timeout=0.2)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.rollback()
            return False
        except sqlite3.OperationalError:  # database is locked
            return True
        finally:
            conn.close()
    probe = sa.create_engine(db_url)
    try:
        with probe.connect() as conn:
            return bool(conn.scalar(sa.text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND state LIKE 'idle in transaction%' AND pid <> pg_backend_pid()")))
    finally:
        probe.dispose()


def test_no_transaction_is_held_while_the_server_talks(cli, env, db_url, monkeypatch):
    assert cli("stories", "import", str(SEED), "--date", DAY).exit_code == 0
    probe = Probe(db_url)
    controller = start_smtp(probe)
    try:
        monkeypatch.setenv("NEWSLETTER_TRANSPORT", "smtp")
        monkeypatch.setenv("NEWSLETTER_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(controller.port))
        result = cli("test-send", "--date", DAY, "--to", "a@example.com", "--to",
                     "b@example.com")
    finally:
        controller.stop()
    assert result.exit_code == 0, result.output
    assert probe.busy == [False, False]
