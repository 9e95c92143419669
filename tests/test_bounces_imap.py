"""`newsletter bounces fetch` against a real Dovecot (tests/imap_server.py), and the whole
path an SMTP sender relies on: a copy goes out with its VERP return path, its bounce comes
back to the mailbox, the daemon's fetch suppresses the address."""

from __future__ import annotations

import imaplib
import re
import ssl
from dataclasses import replace

import dkim
import pytest
from sqlalchemy import select

from jobs.daemon import Daemon
from newsletter.mail.verp import Verp
from newsletter.providers.smtp import SmtpTransport
from newsletter.settings import load_settings
from newsletter.store.db import make_engine
from newsletter.store.models import Delivery
from tests.conftest import SEED, _unavailable
from tests.imap_server import PASSWORD, USER, Dovecot, available
from tests.smtp_sink import SmtpFake, running
from tests.test_bounces import BOUNCES, PERSON, SECRET, facts, message, sent
from tests.test_smtp import dkim_key, self_signed  # noqa: F401 - dkim_key is a fixture
from tests.test_transports import ENVELOPE, recipient


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory):
    return self_signed(tmp_path_factory.mktemp("imap-tls"))


@pytest.fixture
def dovecot(tls_files):
    if not available():
        _unavailable("Dovecot (Debian package dovecot-imapd, run as root)",
                     "NEWSLETTER_REQUIRE_DOVECOT")
    server = Dovecot(*tls_files)
    yield server
    server.stop()


@pytest.fixture
def trust(tls_files, monkeypatch):
    """The CLI's default TLS context trusts the test certificate (OpenSSL reads
    SSL_CERT_FILE), so the command runs exactly as an operator's would."""
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_files[0]))
    return ssl.create_default_context(cafile=str(tls_files[0]))


def deliver(server: Dovecot, context: ssl.SSLContext, *raws: bytes) -> None:
    with imaplib.IMAP4_SSL("localhost", server.imaps_port, ssl_context=context) as imap:
        imap.login(USER, PASSWORD)
        for raw in raws:
            assert imap.append("INBOX", None, None, raw)[0] == "OK"


def folders(server: Dovecot, context: ssl.SSLContext) -> dict[str, int]:
    counts = {}
    with imaplib.IMAP4_SSL("localhost", server.imaps_port, ssl_context=context) as imap:
        imap.login(USER, PASSWORD)
        for name in ("INBOX", "Processed"):
            status, data = imap.select(name, readonly=True)
            counts[name] = int(data[0]) if status == "OK" else None
    return counts


@pytest.mark.parametrize("scheme", ["imaps", "imap"], ids=["implicit-tls", "starttls"])
def test_fetch_processes_every_message_and_moves_it(cli, sessions, env, dovecot, trust,
                                                    monkeypatch, scheme):
    verp = Verp(BOUNCES, SECRET)
    delivery = sent(sessions)
    deliver(dovecot, trust,
            message("postfix_user_unknown.eml", verp.return_path(delivery), tag="i1"),
            message("outlook_out_of_office.eml", verp.return_path(delivery), tag="i2"))
    monkeypatch.setenv("NEWSLETTER_BOUNCE_ADDRESS", BOUNCES)
    monkeypatch.setenv("NEWSLETTER_BOUNCE_IMAP_URL", dovecot.url(scheme))
    result = cli("bounces", "fetch")
    assert result.exit_code == 0, result.output
    assert result.output.strip() == "1 hard, 1 auto-reply"
    assert facts(sessions)["suppressed"] == "bounced"
    assert folders(dovecot, trust) == {"INBOX": 0, "Processed": 2}
    assert cli("bounces", "fetch").output.strip() == "no messages"


def test_a_message_already_processed_from_a_file_is_moved_and_changes_nothing(
        cli, sessions, env, dovecot, trust, monkeypatch, tmp_path):
    raw = message("postfix_user_unknown.eml", Verp(BOUNCES, SECRET).return_path(sent(sessions)))
    (tmp_path / "saved.eml").write_bytes(raw)
    monkeypatch.setenv("NEWSLETTER_BOUNCE_ADDRESS", BOUNCES)
    monkeypatch.setenv("NEWSLETTER_BOUNCE_IMAP_URL", dovecot.url())
    assert cli("bounces", "process", str(tmp_path / "saved.eml")).output.strip() == "1 hard"
    deliver(dovecot, trust, raw)
    assert cli("bounces", "fetch").output.strip() == "1 duplicate"
    assert folders(dovecot, trust) == {"INBOX": 0, "Processed": 1}


def test_a_refused_password_or_a_wrong_certificate_is_one_line(cli, env, dovecot, trust,
                                                               monkeypatch, tls_files):
    monkeypatch.setenv("NEWSLETTER_BOUNCE_IMAP_URL", dovecot.url(password="wrong"))
    result = cli("bounces", "fetch")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: IMAP server localhost:{dovecot.imaps_port}: ")
    assert "wrong" not in result.output and result.output.count("\n") == 1
    monkeypatch.setenv("NEWSLETTER_BOUNCE_IMAP_URL", dovecot.url())
    monkeypatch.delenv("SSL_CERT_FILE")  # the system CAs do not know the test certificate
    result = cli("bounces", "fetch")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: TLS with IMAP server localhost:{dovecot.imaps_port}")


def test_no_mailbox_configured(cli, env):
    result = cli("bounces", "fetch")
    assert result.exit_code == 1
    assert "NEWSLETTER_BOUNCE_IMAP_URL is not set" in result.output


def test_smtp_copies_carry_a_verp_return_path_from_and_dkim_unchanged(make_settings,
                                                                      dkim_key):  # noqa: F811
    key, record = dkim_key
    with running(SmtpFake()) as server:
        settings = make_settings(transport="smtp", smtp_host="127.0.0.1",
                                 smtp_port=server.port, bounce_address=BOUNCES,
                                 secret_key=SECRET, dkim_domain="example.org",
                                 dkim_selector="spin2024", dkim_private_key_path=key)
        with SmtpTransport(settings) as transport:
            copies = [replace(recipient(n), delivery_id=40 + n) for n in (0, 1)]
            assert [r.status for r in transport.send_batch(ENVELOPE, copies)] == ["sent"] * 2
        received = server.handler.messages
    verp = Verp(BOUNCES, SECRET)
    assert [verp.delivery_id(m.mail_from) for m in received] == [40, 41]
    assert received[0].mail_from != received[1].mail_from
    for copy in received:
        head = copy.content.split(b"\r\n\r\n", 1)[0]
        assert re.search(rb"^From: .*<news@example\.org>", head, re.M), head
        assert b"bounces" not in head  # no personal data, no token in the headers
        assert dkim.verify(copy.content, dnsfunc=lambda name, timeout=5: record)


def test_end_to_end_an_smtp_sender_gets_bounces_suppressed_by_the_daemon(
        cli, sessions, env, dovecot, trust, monkeypatch):
    with running(SmtpFake()) as server:
        for name, value in {"TRANSPORT": "smtp", "SMTP_HOST": "127.0.0.1",
                            "SMTP_PORT": str(server.port), "BOUNCE_ADDRESS": BOUNCES,
                            "FROM": "The Daily Spin <news@news.example.org>"}.items():
            monkeypatch.setenv(f"NEWSLETTER_{name}", value)
        assert cli("stories", "import", str(SEED)).exit_code == 0
        assert cli("subscribers", "add", PERSON, "--confirmed").exit_code == 0
        assert cli("subscribers", "add", "stays@example.net", "--confirmed").exit_code == 0
        assert cli("send").exit_code == 0
        received = {m.rcpt_tos[0].lower(): m for m in server.handler.messages}
    copy = received[PERSON.lower()]
    assert copy.mail_from.startswith("bounces+")
    assert received["stays@example.net"].mail_from != copy.mail_from
    # The relay accepted both; a day later the recipient's server bounces one of them.
    deliver(dovecot, trust, message("gmail_no_such_account.eml", copy.mail_from, tag="e2e"))
    monkeypatch.setenv("NEWSLETTER_BOUNCE_IMAP_URL", dovecot.url("imap"))
    monkeypatch.setenv("NEWSLETTER_BOUNCE_FETCH_MINUTES", "60")
    daemon = Daemon(load_settings(), make_engine(env["NEWSLETTER_DATABASE_URL"]))
    scheduler = daemon._scheduler()
    job = scheduler.get_job("bounces")
    assert job is not None and job.trigger.interval.total_seconds() == 3600
    daemon._fetch_bounces()
    daemon.engine.dispose()
    after = facts(sessions)
    assert (after["deliveries"], after["status"], after["suppressed"]) == \
        (["failed"], "bounced", "bounced")
    assert facts(sessions, "stays@example.net")["suppressed"] is None
    with sessions() as session:
        errors = session.scalars(select(Delivery.error).where(Delivery.error.is_not(None))).all()
    assert len(errors) == 1 and "5.1.1" in errors[0]
