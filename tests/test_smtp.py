"""SMTP against a real aiosmtpd server on loopback: plain, STARTTLS and implicit TLS with
a self-signed certificate, AUTH, scripted 421/451/550 replies, timeouts and DKIM."""

from __future__ import annotations

import base64
import dataclasses
import re
import ssl
import subprocess
from pathlib import Path

import dkim
import pytest
from aiosmtpd.smtp import AuthResult, LoginPassword

from newsletter.errors import AuthRefused, ConfigError, TransportError
from newsletter.mail.failures import Cause
from newsletter.mail.message import Envelope
from newsletter.providers.smtp import SmtpTransport
from newsletter.render.slots import SlottedText
from tests.smtp_sink import SmtpFake, free_port, start_smtp
from tests.test_transports import (
    ENVELOPE,
    canonical,
    parse_mime,
    recipient,
)


def openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate and key for localhost and 127.0.0.1, valid for a day: the TLS of the
    test servers (SMTP here, IMAP in test_bounces_imap)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
            "-out", str(cert), "-days", "1", "-subj", "/CN=localhost",
            "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")
    return cert, key


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    cert, key = self_signed(tmp_path_factory.mktemp("tls"))
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert, key)
    return server, ssl.create_default_context(cafile=str(cert))


def authenticator(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and \
        (auth_data.login, auth_data.password) == (b"spin", b"s3cret")
    return AuthResult(success=ok, handled=False)


@pytest.fixture(params=[False, True], ids=["lockstep", "pipelining"])
def fake(request):
    return SmtpFake(pipelining=request.param)


@pytest.fixture
def server(fake):
    controller = start_smtp(fake)
    yield controller
    controller.stop()


@pytest.fixture
def smtp(make_settings, server):
    def make(**overrides) -> SmtpTransport:
        settings = make_settings(transport="smtp", smtp_host="127.0.0.1",
                                 smtp_port=server.port, **overrides)
        return SmtpTransport(settings)
    return make


def test_starttls_and_auth_with_a_self_signed_certificate(fake, make_settings, certificate):
    server_context, client_context = certificate
    controller = start_smtp(fake, tls_context=server_context, require_starttls=True,
                            authenticator=authenticator, auth_required=True)
    try:
        settings = make_settings(transport="smtp", smtp_host="127.0.0.1",
                                 smtp_port=controller.port, smtp_security="starttls",
                                 smtp_username="spin", smtp_password="s3cret")
        with SmtpTransport(settings, ssl_context=client_context) as transport:
            results = transport.send_batch(ENVELOPE, [recipient(0), recipient(1)])
        assert [r.status for r in results] == ["sent", "sent"]
        assert [m.rcpt_tos for m in fake.messages] == [["reader0@example.com"],
                                                       ["reader1@example.com"]]
        assert fake.messages[0].mail_from == "news@example.org"
        # The system CAs do not know our certificate: refused, as it should be.
        with pytest.raises(TransportError, match="TLS"), SmtpTransport(settings) as transport:
            transport.send_batch(ENVELOPE, [recipient(2)])
    finally:
        controller.stop()


def test_implicit_tls(fake, make_settings, certificate):
    server_context, client_context = certificate
    controller = start_smtp(fake, ssl_context=server_context)
    try:
        settings = make_settings(transport="smtp", smtp_host="127.0.0.1",
                                 smtp_port=controller.port, smtp_security="ssl")
        with SmtpTransport(settings, ssl_context=client_context) as transport:
            assert transport.send_batch(ENVELOPE, [recipient(0)])[0].status == "sent"
    finally:
        controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_plain_auth_and_a_refused_password(fake, make_settings):
    controller = start_smtp(fake, authenticator=authenticator, auth_required=True,
                            auth_require_tls=False)
    try:
        def settings(password):
            return make_settings(transport="smtp", smtp_host="127.0.0.1",
                                 smtp_port=controller.port, smtp_username="spin",
                                 smtp_password=password)
        with SmtpTransport(settings("s3cret")) as transport:
            assert transport.send_batch(ENVELOPE, [recipient(0)])[0].status == "sent"
        with pytest.raises(AuthRefused, match="refused the username and password"):
            SmtpTransport(settings("wrong")).send_batch(ENVELOPE, [recipient(1)])
    finally:
        controller.stop()
    assert len(fake.messages) == 1


def test_one_connection_for_many_messages_and_batches(fake, smtp):
    with smtp() as transport:
        transport.send_batch(ENVELOPE, [recipient(n) for n in range(5)])
        transport.send_batch(ENVELOPE, [recipient(n) for n in range(5, 10)])
    assert len(fake.messages) == 10
    assert len({m.session for m in fake.messages}) == 1


def test_421_reconnects_4xx_is_transient_and_refusals_say_who_they_are_about(fake, smtp):
    fake.rcpt_script = {
        "reader1@example.com": ["421 4.3.2 Service shutting down"],
        "reader2@example.com": ["451 4.7.1 Greylisted, try later"],
        "reader3@example.com": ["550 5.1.1 No such user"],
        "reader4@example.com": ["552 5.2.2 Mailbox full"],
        "reader5@example.com": ["550 No such user here"],  # no enhanced code, at RCPT
    }
    with smtp() as transport:
        results = transport.send_batch(ENVELOPE, [recipient(n) for n in range(7)])
    assert [(r.status, r.cause) for r in results] == [
        ("sent", None), ("sent", None), ("failed", Cause.TRANSIENT),
        ("failed", Cause.ADDRESS), ("failed", Cause.RECIPIENT), ("failed", Cause.ADDRESS),
        ("sent", None)]
    assert results[2].error.startswith("451") and "No such user" in results[3].error
    assert [m.rcpt_tos[0] for m in fake.messages] == [
        "reader0@example.com", "reader1@example.com", "reader6@example.com"]
    assert len({m.session for m in fake.messages}) == 2  # one reconnect, after the 421
    assert results[0].provider_id.endswith("queued as Q1")
    assert fake.resets >= 4  # every refused transaction was reset before the next one


@pytest.mark.parametrize(("command", "reply"), [
    ("RCPT", "550 5.7.1 Relaying denied"),
    ("RCPT", "550 Relaying denied"),          # no enhanced code: the words tell
    ("RCPT", "554 5.7.1 Client host rejected"),
    ("MAIL", "550 5.1.8 Sender address rejected: Domain not found"),
    ("MAIL", "530 5.7.0 Authentication required"),
    ("DATA", "552 5.3.4 Message size exceeds fixed limit"),
    ("DATA", "554 Transaction failed"),
    ("DATA", "550 5.6.0 Content rejected"),
])
def test_a_refusal_about_us_ends_the_batch_and_names_the_answer(fake, smtp, command, reply):
    fake.refuse[command] = reply
    with smtp() as transport:
        with pytest.raises(TransportError) as caught:
            transport.send_batch(ENVELOPE, [recipient(n) for n in range(5)])
        err = caught.value
        assert err.cause in (Cause.MESSAGE, Cause.CONFIG) and reply in str(err)
        # None went out: the refused copy and the rest are all certainly unsent.
        assert err.partial == [] and [r.delivery_id for r in err.untouched] == [0, 1, 2, 3, 4]
        # The transaction was reset: once the relay is fixed, the same connection sends
        # (a server left mid-transaction would answer the next MAIL with 503).
        del fake.refuse[command]
        connection = transport.connection
        results = transport.send_batch(ENVELOPE, [recipient(9)])
        assert transport.connection is connection
    assert [r.status for r in results] == ["sent"] and fake.resets >= 1
    assert fake.recipients() == ["reader9@example.com"]


def test_421_twice_gives_up_on_that_message_only(fake, smtp):
    fake.rcpt_script = {"reader0@example.com": ["421 4.3.2 bye"] * 2}
    with smtp() as transport:
        results = transport.send_batch(ENVELOPE, [recipient(0), recipient(1)])
    assert [(r.status, r.cause) for r in results] == [("failed", Cause.TRANSIENT),
                                                      ("sent", None)]


def test_no_reply_after_the_data_is_ambiguous_and_the_next_message_goes(fake, smtp):
    fake.data_delays = [1.5]
    with smtp(smtp_timeout=0.5) as transport:
        results = transport.send_batch(ENVELOPE, [recipient(0), recipient(1)])
    assert results[0].status == "failed" and results[0].ambiguous
    assert "may have been delivered" in results[0].error
    assert results[1].status == "sent"


def test_no_server_fails_the_whole_call(make_settings):
    settings = make_settings(transport="smtp", smtp_host="127.0.0.1", smtp_port=free_port())
    with pytest.raises(TransportError) as caught:
        SmtpTransport(settings).send_batch(ENVELOPE, [recipient(0)])
    assert caught.value.transient


def test_dot_lines_survive_smtp_transparency(fake, smtp):
    text = SlottedText((".\n..\n.leading\n", "\n.\n"), ("email",))
    envelope = Envelope(sender=ENVELOPE.sender, subject="dots", html=text, text=text,
                        list_id=ENVELOPE.list_id)
    with smtp() as transport:
        transport.send_batch(envelope, [recipient(0)])
    raw = fake.messages[0].content
    assert canonical(parse_mime(raw).text) == text.fill(recipient(0).values)


@pytest.fixture(scope="module")
def dkim_key(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dkim")
    key = folder / "dkim.pem"
    openssl("genrsa", "-out", str(key), "2048")
    der = subprocess.run(["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
                         check=True, capture_output=True).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def test_dkim_signature_covers_both_list_unsubscribe_headers(fake, smtp, dkim_key):
    key, record = dkim_key

    def dns(name, timeout=5):
        assert name == b"spin2024._domainkey.example.org."
        return record

    with smtp(dkim_domain="example.org", dkim_selector="spin2024",
              dkim_private_key_path=key) as transport:
        assert transport.send_batch(ENVELOPE, [recipient(0, "Zoë")])[0].status == "sent"
    signed = fake.messages[0].content
    assert dkim.verify(signed, dnsfunc=dns)
    signature = re.search(rb"DKIM-Signature:.*?\r\n(?! )", signed, re.S).group()
    signed_headers = re.search(rb"h=([^;]+)", re.sub(rb"\s+", b"", signature)).group(1)
    assert {b"list-unsubscribe", b"list-unsubscribe-post", b"from", b"to", b"subject"} <= \
        set(signed_headers.lower().split(b":"))
    forged = signed.replace(b"/unsubscribe/tok0", b"/unsubscribe/tok9")
    assert not dkim.verify(forged, dnsfunc=dns)
    dropped = signed.replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n", b"")
    assert not dkim.verify(dropped, dnsfunc=dns)


def test_pipelining_is_used_when_offered(fake, smtp):
    with smtp() as transport:
        transport.send_batch(ENVELOPE, [recipient(0)])
        assert transport.connection.has_extn("pipelining") == fake.pipelining


def test_the_envelope_sender_is_checked_before_anything_is_sent(fake, smtp):
    # An internationalised domain goes into MAIL FROM as IDNA (never as raw UTF-8)...
    sender = "The Spin <news@exämple.org>"
    with smtp(NEWSLETTER_FROM=sender) as transport:
        [result] = transport.send_batch(dataclasses.replace(ENVELOPE, sender=sender),
                                        [recipient(0)])
    assert result.delivered
    assert fake.messages[0].mail_from == "news@xn--exmple-cua.org"
    # ...and one that cannot go into MAIL FROM as it is stops at once, naming the setting.
    with pytest.raises(ConfigError, match="NEWSLETTER_FROM"):
        smtp(NEWSLETTER_FROM='The Spin <"news desk"@example.org>')
