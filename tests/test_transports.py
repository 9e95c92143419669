"""The shared contract every transport keeps, run against each with a local fake:
a real aiosmtpd server for SMTP, pytest-httpserver answering like each ESP, the file
system for the outbox. What a recipient would see is rebuilt from what the fake received
(for ESPs: the provider's substitution applied to the request), so the assertions are
about the copies people get."""

from __future__ import annotations

import email
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from email import policy
from email.utils import parseaddr
from pathlib import Path

import pytest
from werkzeug import Request, Response

from newsletter.errors import ConfigError
from newsletter.mail.failures import Cause
from newsletter.mail.message import Envelope, Recipient
from newsletter.providers import TRANSPORTS, Transport, get_transport
from newsletter.render.slots import SlottedText
from newsletter.settings import Settings
from tests.smtp_sink import SmtpFake, start_smtp

STORY = ("A story quoting {{ email }}, %recipient.x%, *|UNSUB|*, -unsubscribe- and "
         "%recipient.s0t% = 100% é 🦆\n.a line with a leading dot\n" + "long " * 40)
HTML = SlottedText((f"<p>{STORY}</p><a href=\"", "\">Unsubscribe</a> sent to ", "."),
                   ("unsubscribe_url", "email"))
TEXT = SlottedText((f"{STORY}\n\nUnsubscribe: ", "\nSent to ", "\n"), ("unsubscribe_url", "email"))
ENVELOPE = Envelope(sender="The Daily Spin <news@example.org>", subject="Today: çà & more",
                    html=HTML, text=TEXT, list_id="The Daily Spin <daily.example.org>",
                    reply_to="Desk <desk@example.org>")


def recipient(n: int, name: str | None = None, email_: str | None = None) -> Recipient:
    address = email_ or f"reader{n}@example.com"
    return Recipient(address, name, {
        "email": address,
        "unsubscribe_url": f"https://news.example.org/unsubscribe/tok{n}.sig",
        "preferences_url": f"https://news.example.org/preferences/tok{n}.sig?a=1&b=2",
        "webview_url": "https://news.example.org/archive/2024-05-01"}, delivery_id=n)


def canonical(text: str) -> str:
    return text.replace("\r\n", "\n")


@dataclass
class Copy:
    """One delivered message as its recipient would see it."""
    to: str
    subject: str
    headers: dict[str, str]
    text: str
    html: str


def parse_mime(data: bytes) -> Copy:
    message = email.message_from_bytes(data, policy=policy.default)
    text, html = message.get_payload()
    return Copy(message["To"].addresses[0].addr_spec, str(message["Subject"]),
                {k: str(v) for k, v in message.items()}, text.get_content(), html.get_content())


# --- fakes -------------------------------------------------------------------------------

def smtp_copies(fake: SmtpFake) -> list[Copy]:
    return [parse_mime(m.content) for m in fake.messages]


def _headers_list(pairs: list[dict[str, str]]) -> dict[str, str]:
    return {h["Name"]: h["Value"] for h in pairs}


def _substitute(text: str, values: dict[str, str], tag: Callable[[str], str]) -> str:
    for key, value in values.items():
        text = text.replace(tag(key), value)
    return text


def sendgrid_copies(request: Request) -> list[Copy]:
    """SendGrid applies each personalization's substitutions to the content."""
    body = request.get_json()
    text, html = (c["value"] for c in body["content"])
    return [Copy(p["to"][0]["email"], body["subject"], {**body["headers"], **p["headers"]},
                 _substitute(text, p["substitutions"], str),
                 _substitute(html, p["substitutions"], str))
            for p in body["personalizations"]]


def mailgun_copies(request: Request) -> list[Copy]:
    """Mailgun sends each `to` its copy, %recipient.NAME% replaced from recipient-variables,
    in the body and in h: headers."""
    form = request.form
    variables = json.loads(form["recipient-variables"])

    def tag(key: str) -> str:
        return f"%recipient.{key}%"

    copies = []
    for to in form.getlist("to"):
        address = parseaddr(to)[1]
        values = variables[address]
        headers = {k[2:]: _substitute(v, values, tag) for k, v in form.items() if k[:2] == "h:"}
        copies.append(Copy(address, form["subject"], headers,
                           _substitute(form["text"], values, tag),
                           _substitute(form["html"], values, tag)))
    return copies


def postmark_copies(request: Request) -> list[Copy]:
    return [Copy(parseaddr(m["To"])[1], m["Subject"], _headers_list(m["Headers"]),
                 m["TextBody"], m["HtmlBody"]) for m in request.get_json()]


def sendgrid_ok(request: Request) -> Response:
    return Response(status=202, headers={"X-Message-Id": "sg-message-1"})


def mailgun_ok(request: Request) -> Response:
    return Response(json.dumps({"id": "<mg-1@mg.example.org>", "message": "Queued. Thank you."}),
                    200, content_type="application/json")


def postmark_ok(request: Request) -> Response:
    answers = [{"ErrorCode": 0, "Message": "OK", "MessageID": f"pm-{i}", "To": m["To"]}
               for i, m in enumerate(request.get_json())]
    return Response(json.dumps(answers), 200, content_type="application/json")


ESP = {  # name: (path, answer, copies)
    "sendgrid": ("/v3/mail/send", sendgrid_ok, sendgrid_copies),
    "mailgun": ("/v3/mg.example.org/messages", mailgun_ok, mailgun_copies),
    "postmark": ("/email/batch", postmark_ok, postmark_copies),
}


# --- fixtures ----------------------------------------------------------------------------

def esp_settings(make_settings, httpserver, name: str, **overrides: object) -> Settings:
    return make_settings(transport=name, esp_api_key="key-123",
                         esp_api_url=f"http://{httpserver.host}:{httpserver.port}",
                         mailgun_domain="mg.example.org", **overrides)


@dataclass
class Rig:
    transport: Transport
    copies: Callable[[], list[Copy]]


@pytest.fixture(params=list(TRANSPORTS))
def rig(request, make_settings, tmp_path):
    name = request.param
    if name == "outbox":
        settings = make_settings()
        outbox = Path(settings.outbox_dir)
        yield Rig(get_transport(settings), lambda: [
            parse_mime(p.read_bytes()) for p in sorted(outbox.glob("*"))])
    elif name == "smtp":
        fake = SmtpFake()
        controller = start_smtp(fake)
        try:
            settings = make_settings(transport="smtp", smtp_host="127.0.0.1",
                                     smtp_port=controller.port)
            yield Rig(get_transport(settings), lambda: smtp_copies(fake))
        finally:
            controller.stop()
    else:
        httpserver = request.getfixturevalue("httpserver")
        path, answer, copies = ESP[name]
        httpserver.expect_request(path, method="POST").respond_with_handler(answer)
        transport = get_transport(esp_settings(make_settings, httpserver, name))
        yield Rig(transport, lambda: [c for r, _ in httpserver.log for c in copies(r)])


# --- the contract ------------------------------------------------------------------------

def test_each_recipient_gets_its_own_copy(rig):
    recipients = [recipient(0, "Zoë Ünal"), recipient(1, 'Plain "Q" Name'), recipient(2)]
    with rig.transport as transport:
        results = transport.send_batch(ENVELOPE, recipients)
    assert [r.recipient for r in results] == recipients
    assert all(r.delivered and not r.error for r in results), results
    copies = {c.to: c for c in rig.copies()}
    assert sorted(copies) == sorted(r.email for r in recipients)
    for r in recipients:
        copy, url = copies[r.email], r.values["unsubscribe_url"]
        assert canonical(copy.text) == TEXT.fill(r.values)
        assert canonical(copy.html) == HTML.fill_html(r.values)
        assert copy.headers["List-Unsubscribe"] == f"<{url}>"
        assert copy.headers["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert copy.headers["List-Id"] == "The Daily Spin <daily.example.org>"
        assert copy.subject == "Today: çà & more"
        others = [o.values["unsubscribe_url"] for o in recipients if o is not r]
        assert not any(o in copy.text or o in copy.html for o in others)


def test_a_header_injecting_recipient_is_invalid_and_the_rest_go(rig):
    bad = recipient(1, email_="x@example.com\r\nBcc: victim@example.com")
    recipients = [recipient(0), bad, recipient(2)]
    with rig.transport as transport:
        results = transport.send_batch(ENVELOPE, recipients)
    # About that reader's address, yet no server said it is dead: that copy fails, and
    # nobody is suppressed for it.
    assert (results[1].status, results[1].cause) == ("failed", Cause.RECIPIENT)
    assert results[0].delivered and results[2].delivered
    assert sorted(c.to for c in rig.copies()) == ["reader0@example.com", "reader2@example.com"]


def test_a_non_ascii_unsubscribe_url_is_ours_to_fix_not_the_readers(rig):
    values = {**recipient(0).values, "unsubscribe_url": "https://nouvelles.exämple.org/u/t"}
    odd = Recipient("reader0@example.com", None, values, delivery_id=0)
    with rig.transport as transport:
        results = transport.send_batch(ENVELOPE, [odd])
    assert (results[0].status, results[0].cause) == ("failed", Cause.CONFIG)
    assert rig.copies() == []


def test_batches_above_the_limit_are_refused(rig):
    many = [recipient(n) for n in range(rig.transport.max_batch + 1)]
    with pytest.raises(ValueError, match="at most"):
        rig.transport.send_batch(ENVELOPE, many)
    assert rig.copies() == []


def test_closing_twice_is_harmless(rig):
    rig.transport.open()
    rig.transport.close()
    rig.transport.close()


# --- the registry ------------------------------------------------------------------------

@pytest.mark.parametrize(("overrides", "message"), [
    ({"transport": "sendgrid"}, "NEWSLETTER_ESP_API_KEY"),
    ({"transport": "postmark"}, "NEWSLETTER_ESP_API_KEY"),
    ({"transport": "mailgun", "esp_api_key": "k"}, "NEWSLETTER_MAILGUN_DOMAIN"),
    ({"transport": "mailgun", "esp_api_key": "k", "mailgun_domain": "a/b"},
     "NEWSLETTER_MAILGUN_DOMAIN"),
    ({"transport": "sendgrid", "esp_api_key": "k", "esp_api_url": "https://proxy/v3"},
     "NEWSLETTER_ESP_API_URL"),
    ({"transport": "smtp", "smtp_username": "u"}, "NEWSLETTER_SMTP_PASSWORD"),
])
def test_missing_options_fail_at_start_up(make_settings, overrides, message):
    with pytest.raises(ConfigError, match=message):
        get_transport(make_settings(**overrides))


def test_esp_api_url_replaces_scheme_host_and_port_only(make_settings):
    transport = get_transport(make_settings(transport="mailgun", esp_api_key="k",
                                            mailgun_domain="mg.example.org",
                                            esp_api_url="https://api.eu.mailgun.net:8443"))
    assert transport.base_url + transport.path == \
        "https://api.eu.mailgun.net:8443/v3/mg.example.org/messages"
    default = get_transport(make_settings(transport="postmark", esp_api_key="k"))
    assert default.base_url == "https://api.postmarkapp.com"


def test_every_transport_is_registered_under_its_setting_name():
    from typing import get_args

    from newsletter.settings import Settings
    assert set(TRANSPORTS) == set(get_args(Settings.model_fields["transport"].annotation))
    assert all(re.fullmatch(r"[a-z]+", name) for name in TRANSPORTS)


# --- the outbox --------------------------------------------------------------------------

def test_outbox_writes_one_whole_file_per_copy_with_a_safe_name(make_settings):
    settings = make_settings()
    odd = recipient(0, email_="../..//etc/$(rm)|{x}*?`'&!#%=^~@example.com")
    with get_transport(settings) as transport:
        results = transport.send_batch(ENVELOPE, [odd, recipient(1), recipient(1)])
    files = sorted(Path(settings.outbox_dir).iterdir())
    assert len(files) == 3  # the same address twice: two files, none overwritten
    assert [r.status for r in results] == ["sent"] * 3
    assert {str(f) for f in files} == {r.provider_id for r in results}
    for path in files:
        assert path.parent == Path(settings.outbox_dir) and path.suffix == ".eml"
        assert re.fullmatch(r"[A-Za-z0-9@._+-]+", path.name), path.name
        assert not path.name.startswith(".")  # no temporary file left behind
        parse_mime(path.read_bytes())
