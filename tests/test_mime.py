"""The fast MIME builder, proved by parsing its copies back with the email package."""

from __future__ import annotations

import email
import quopri
import random
from email import policy
from email.header import decode_header, make_header
from email.utils import parseaddr, parsedate_to_datetime

import pytest

from newsletter.mail.message import Envelope, Recipient
from newsletter.mail.mime import HeaderError, MimeBuilder, qp_encode
from newsletter.render.slots import SlottedText

AWKWARD = ["=", "==3D", "é", "Ünïcödé ", "🦆", "{{ email }}", "%recipient.x%", "*|UNSUB|*",
           "-unsubscribe-", "\r\n", "\n", "x\ry", ".", "\n.", "..", " ", "\t", "  \n", "x" * 80,
           "a" * 1200, "=\r\n", "--=_spin_", "From ", "<a href=\"", "\x00", "\x7f", "?="]


def envelope(html: SlottedText, text: SlottedText, **kw) -> Envelope:
    fields = {"sender": "Zoë Spin <news@example.org>", "subject": "Today: çà & more",
              "list_id": "The Daily Spin <daily.example.org>", **kw}
    return Envelope(html=html, text=text, **fields)


def values(n: int = 0, **kw: str) -> dict[str, str]:
    return {"email": f"reader{n}@example.com",
            "unsubscribe_url": f"https://news.example.org/unsubscribe/tok{n}.sig-_x",
            "preferences_url": f"https://news.example.org/preferences/tok{n}.sig?a=1&b=2",
            "webview_url": "https://news.example.org/archive/2024-05-01", **kw}


def parse(data: bytes) -> email.message.EmailMessage:
    return email.message_from_bytes(data, policy=policy.default)


def bodies(message) -> tuple[str, str]:
    text, html = message.get_payload()
    assert text.get_content_type() == "text/plain" and html.get_content_type() == "text/html"
    assert text.get_content_charset() == html.get_content_charset() == "utf-8"
    return text.get_content(), html.get_content()


def canonical(text: str) -> str:
    """Line breaks travel as CRLF (RFC 2046 4.1.1): compare with them normalised. (A lone CR
    counts as a break too, within one literal or value: the generator never splits a CRLF
    between two pieces.)"""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def display_name(data: bytes) -> str:
    """The To display name decoded per RFC 2047 6.2 (white space between encoded-words is
    dropped; headerregistry keeps it in a phrase, so it is not used here)."""
    raw = email.message_from_bytes(data)["To"]
    return parseaddr(str(make_header(decode_header(raw))))[0]


def check_wire_format(data: bytes) -> None:
    assert b"\n" not in data.replace(b"\r\n", b"") and b"\r" not in data.replace(b"\r\n", b"")
    head, body = data.split(b"\r\n\r\n", 1)
    for line in head.split(b"\r\n"):
        assert len(line) <= 998
    for line in body.split(b"\r\n"):
        assert len(line) <= 76, line
        assert not line.startswith(b"."), line  # safe for SMTP DATA without dot-stuffing
    assert data.isascii()


def random_text(rng: random.Random) -> str:
    return "".join(rng.choice(AWKWARD) if rng.random() < 0.3 else rng.choice("ab .=\n")
                   for _ in range(rng.randrange(0, 60)))


def test_qp_pieces_round_trip_and_join_at_line_starts():
    rng = random.Random(8058)
    for _ in range(500):
        pieces = [random_text(rng) for _ in range(4)]
        encoded = b"".join(qp_encode(p) for p in pieces)
        assert canonical(quopri.decodestring(encoded).decode("utf-8")) == canonical(
            "".join(pieces))
        for line in encoded.split(b"\r\n"):
            assert len(line) <= 76 and not line.startswith(b".")


def test_random_awkward_content_and_values_decode_to_fill():
    rng = random.Random(2045)
    for round_ in range(150):
        slots = tuple(rng.choice(["email", "unsubscribe_url", "preferences_url"])
                      for _ in range(rng.randrange(0, 6)))
        html = SlottedText(tuple(random_text(rng) for _ in range(len(slots) + 1)), slots)
        text = SlottedText(tuple(random_text(rng) for _ in range(len(slots) + 1)), slots)
        builder = MimeBuilder(envelope(html, text))
        for n in range(3):
            vals = values(n, email=f"{random_text(rng)}@example.com",
                          preferences_url=random_text(rng))
            data = builder.build(Recipient(f"r{n}@example.com", None, vals))
            check_wire_format(data)
            got_text, got_html = bodies(parse(data))
            assert canonical(got_text) == canonical(text.fill(vals)), round_
            assert canonical(got_html) == canonical(html.fill_html(vals)), round_


def test_each_copy_has_its_own_headers_and_values():
    html = SlottedText(("<p>Story with {{ braces }} and %recipient.x% *|UNSUB|* -unsubscribe-"
                        " = 100% é" + " long" * 100 + "</p><a href=\"", "\">Unsubscribe</a> (",
                        ")"), ("unsubscribe_url", "email"))
    text = SlottedText(("Story é\n.leading dot\nUnsubscribe: ", "\n"), ("unsubscribe_url",))
    builder = MimeBuilder(envelope(html, text, reply_to="Desk <desk@example.org>"))
    seen_ids = set()
    for n, name in enumerate(["Zoë Ünal", 'Plain "Quoted" \\ Name', None, "日本語の名前" * 5]):
        recipient = Recipient(f"reader{n}@example.com", name, values(n))
        data = builder.build(recipient)
        message = parse(data)
        assert message["To"].addresses[0].addr_spec == recipient.email
        assert display_name(data) == (name or "")
        assert message["From"].addresses[0].display_name == "Zoë Spin"
        assert message["Subject"] == "Today: çà & more"
        assert message["Reply-To"].addresses[0].addr_spec == "desk@example.org"
        assert message["List-Id"] == "The Daily Spin <daily.example.org>"
        assert message["List-Unsubscribe"] == f"<{values(n)['unsubscribe_url']}>"
        assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        assert parsedate_to_datetime(message["Date"]).tzinfo is not None
        assert message.get_content_type() == "multipart/alternative"
        seen_ids.add(message["Message-ID"])
        got_text, got_html = bodies(message)
        assert values(n)["unsubscribe_url"] in got_text and values(n)["unsubscribe_url"] in got_html
        assert canonical(got_html) == html.fill_html(values(n))
        assert canonical(got_text) == text.fill(values(n))
    assert len(seen_ids) == 4


def test_html_values_are_escaped_text_values_are_not():
    html = SlottedText(("<a href=\"", "\">", "</a>"), ("preferences_url", "email"))
    text = SlottedText(("", " ", ""), ("preferences_url", "email"))
    vals = values(email="o'brien&co@example.com")
    got_text, got_html = bodies(parse(MimeBuilder(envelope(html, text)).build(
        Recipient("a@example.com", None, vals))))
    assert got_html == ('<a href="https://news.example.org/preferences/tok0.sig?a=1&amp;b=2">'
                        "o&#x27;brien&amp;co@example.com</a>")
    assert got_text == f"{vals['preferences_url']} o'brien&co@example.com"


def test_no_reply_to_unless_set():
    text = SlottedText(("t",), ())
    assert "Reply-To" not in parse(MimeBuilder(envelope(text, text)).build(
        Recipient("a@example.com", None, values())))


def test_cr_lf_in_names_and_subjects_never_adds_a_header():
    text = SlottedText(("t",), ())
    builder = MimeBuilder(envelope(text, text, subject="Hi\r\nBcc: victim@example.com\r\n\r\nX",
                                   sender="Evil\r\nX-Injected: 1 <news@example.org>"))
    data = builder.build(Recipient("a@example.com", "Bob\nBcc: spy@example.com\r\n", values()))
    message = parse(data)
    assert sorted(message.keys()) == sorted([
        "Date", "To", "Message-ID", "List-Unsubscribe", "From", "Subject", "List-Id",
        "List-Unsubscribe-Post", "MIME-Version", "Content-Type"])
    assert message["Subject"] == "Hi Bcc: victim@example.com X"
    assert message["To"].addresses[0].display_name == "Bob Bcc: spy@example.com"


@pytest.mark.parametrize("change", [
    {"email": "a@example.com\r\nBcc: x@example.com"},
    {"email": "no-at-sign"},
    {"email": "ünï@example.com"},
    {"values": values(unsubscribe_url="https://x.org/u\r\nBcc: x@example.com")},
    {"values": values(unsubscribe_url="https://x.org/u> , <mailto:x@example.com")},
    {"message_id": "<abc@x>\r\nBcc: x@example.com"},
])
def test_unsafe_header_values_are_refused(change):
    text = SlottedText(("t",), ())
    fields = {"email": "a@example.com", "name": None, "values": values(), **change}
    with pytest.raises(HeaderError):
        MimeBuilder(envelope(text, text)).build(Recipient(**fields))


def test_international_domain_goes_as_idna():
    text = SlottedText(("t",), ())
    message = parse(MimeBuilder(envelope(text, text)).build(
        Recipient("anna@bücher.example", None, values())))
    assert message["To"].addresses[0].addr_spec == "anna@xn--bcher-kva.example"
