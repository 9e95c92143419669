"""Fast MIME: encode what every copy shares once, then splice each recipient's values.

Building each copy with `email.message.EmailMessage` costs milliseconds; a newsletter copy
differs from the next only in To, Message-ID, List-Unsubscribe and a few slot values. So a
`MimeBuilder` pre-encodes, once per Envelope, the fixed headers and every literal piece of
the html and text bodies, and per recipient encodes only the values.

Splicing into already-encoded bytes would be wrong (a quoted-printable soft break can split
a placeholder, `=` must become `=3D`), so every piece, literal or value, is encoded on its
own and ends with a soft line break (RFC 2045 6.7 rule 5): pieces join at a line start and
no line exceeds 76 characters. Lines never start with "." (encoded as =2E), so the bytes
are already safe for SMTP DATA (RFC 5321 4.5.2) and line ends are CRLF throughout.
"""

from __future__ import annotations

import binascii
import itertools
import re
import secrets
import time
from collections.abc import Mapping
from email import policy
from email.charset import BASE64, Charset
from email.utils import formataddr, formatdate, parseaddr

from newsletter.mail.message import Envelope, Recipient
from newsletter.render.slots import SlottedText, html_values

CRLF = b"\r\n"
MAX_LINE = 76  # RFC 2045 6.7 rule 5, counting the "=" of a soft line break
MAX_WORD = 75  # characters in one encoded-word (RFC 2047 2)
_UTF8 = Charset("utf-8")
# "B" words always: choosing the shorter of B and Q measures every character with
# email.quoprimime, and bench/bench_mime.py (a non-ASCII name on every copy) went from 22 to
# 43 us a copy with it, against 25 us with B.
_UTF8.header_encoding = BASE64

_NEWLINE = re.compile(r"\r\n|\r|\n")
# Values that need no escaping at all (URLs, most addresses): the common, fast case.
_PLAIN = re.compile(r"[\x21-\x3c\x3e-\x7e]*")
# What may stand verbatim in a header as one token: visible ASCII, no angle brackets.
_TOKEN = re.compile(r"[\x21-\x3b\x3d\x3f-\x7e]+")
_FOLD_WS = re.compile(r"\s*[\r\n]+\s*")


class HeaderError(ValueError):
    """A header value that could smuggle in another header or is not representable."""


class AddressError(HeaderError):
    """The recipient's own address cannot be written (about that person, not about us)."""


def qp_encode(text: str) -> bytes:
    """Quoted-printable `text` (UTF-8) as a self-contained run of lines.

    Line breaks become CRLF (canonical form of text, RFC 2046 4.1.1); the result ends at a
    line start (a soft break is added if needed), so encoded pieces can be concatenated.
    binascii.b2a_qp does the encoding; around it, CRLF line ends and the fixes of _fit.
    """
    if not text:
        return b""
    if len(text) < MAX_LINE and text[0] != "." and _PLAIN.fullmatch(text):
        return text.encode("ascii") + b"=\r\n"
    data = _NEWLINE.sub("\n", text).encode("utf-8")
    lines = binascii.b2a_qp(data, istext=True).split(b"\n")
    fitted = []
    for number, line in enumerate(lines):
        # The last line gets a soft break after it: one character less.
        limit = MAX_LINE - (number == len(lines) - 1)
        fitted += _fit(line, limit) if len(line) > limit or line.startswith(b".") else [line]
    return b"\r\n".join(fitted) + (b"=\r\n" if fitted[-1] else b"")


def _fit(line: bytes, limit: int) -> list[bytes]:
    """What b2a_qp leaves undone: a "." starting a line goes as =2E (SMTP would take a lone
    one for the end of DATA, RFC 5321 4.5.2; b2a_qp encodes it only when the line is nothing
    else), and a line longer than 76 (b2a_qp's =20 for trailing white space can pass the
    limit) is split with a soft break, never inside an =XX escape."""
    if line.startswith(b"."):
        line = b"=2E" + line[1:]
    if len(line) <= limit:
        return [line]
    soft = line.endswith(b"=")  # "=" in the text is always =3D: a last "=" is a soft break
    body = line[:-1] if soft else line
    cut = MAX_LINE - 1
    for back in (1, 2):
        if body[cut - back:cut - back + 1] == b"=":
            cut -= back
            break
    return [body[:cut] + b"=", *_fit(body[cut:] + (b"=" if soft else b""), limit)]


def one_line(value: str) -> str:
    """Fold any CR/LF (and the white space around it) into one space: a subject or display
    name taken from story or subscriber data can then never start a new header."""
    return _FOLD_WS.sub(" ", value).strip()


def address_value(value: str, what: str) -> str:
    """An addr-spec, URL or msg-id that goes into a header verbatim: must be plain ASCII
    without white space or angle brackets, else it could break out of its header."""
    if not _TOKEN.fullmatch(value):
        raise HeaderError(f"{what} cannot go into a header: {value!r}")
    return value


def encode_address(address: str) -> str:
    """addr-spec for headers: an internationalised domain goes as IDNA (RFC 5890); a
    non-ASCII local part would need SMTPUTF8 (RFC 6531), which we do not negotiate."""
    local, at, domain = address.rpartition("@")
    if not at or not local:
        raise AddressError(f"not an address: {address!r}")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError:
            raise AddressError(f"bad domain in address: {address!r}") from None
    try:
        return address_value(f"{local}@{domain}", "address")
    except HeaderError as err:
        raise AddressError(str(err)) from None


def encode_words(text: str) -> str:
    """RFC 2047 encoded-words, each at most 75 characters and holding whole characters
    (RFC 2047 2 and 5), folded onto continuation lines."""
    return "\r\n ".join(_UTF8.header_encode_lines(text, itertools.repeat(MAX_WORD)))


def mailbox(name: str | None, address: str) -> str:
    """`Display Name <addr>` ready for a header: CR/LF folded away, non-ASCII names as
    encoded-words, ASCII names as formataddr writes them (a quoted-string when they hold
    specials, RFC 5322 3.2.4). email.headerregistry would parse and fold the header too,
    but at ~250 us a copy, ten times all the rest of one (measured beside bench_mime.py)."""
    addr = encode_address(address)
    name = one_line(name or "")
    if not name:
        return addr
    # A name that looks like an encoded-word is encoded itself, or a reader would decode it.
    if name.isascii() and "=?" not in name:
        return formataddr((name, addr))
    return f"{encode_words(name)} <{addr}>"


def fixed_header(name: str, value: str) -> bytes:
    """One invariant header, encoded and folded by the email package (done once per send)."""
    header = policy.SMTP.header_factory(name, one_line(value))
    return header.fold(policy=policy.SMTP).encode("ascii")


def _pieces(text: SlottedText, prefix: str) -> list[bytes | str]:
    """Encoded literals, with each slot left as a key: prefix + slot name."""
    pieces: list[bytes | str] = [qp_encode(text.literals[0])]
    for slot, literal in zip(text.slots, text.literals[1:], strict=True):
        pieces += [prefix + slot, qp_encode(literal)]
    return pieces


class MimeBuilder:
    """Made once per Envelope; `build(recipient)` returns one copy's bytes (CRLF, ready for
    SMTP DATA): multipart/alternative, text then HTML, both UTF-8 quoted-printable. Values go
    into the HTML escaped (html_values), into the text as they are."""

    def __init__(self, envelope: Envelope):
        self.envelope = envelope
        # A boundary containing "=_" can never occur in quoted-printable output, where "=" is
        # always followed by two hex digits or a line break (RFC 2045 6.7, RFC 2046 5.1.1).
        boundary = f"=_spin_{secrets.token_hex(12)}"
        self.sender_address = parseaddr(envelope.sender)[1]
        head = [
            fixed_header("From", envelope.sender),
            fixed_header("Subject", envelope.subject),
        ]
        if envelope.reply_to:
            head.append(fixed_header("Reply-To", envelope.reply_to))
        head.append(fixed_header("List-Id", envelope.list_id))
        # RFC 8058 one-click unsubscribe; List-Unsubscribe itself is per recipient.
        head.append(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n")
        for name, value in envelope.headers:
            if not re.fullmatch(r"[!-9;-~]+", name):  # RFC 5322 2.2 field-name
                raise HeaderError(f"bad header name: {name!r}")
            head.append(fixed_header(name, value))
        head.append(b"MIME-Version: 1.0\r\n")
        head.append(f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'
                    .encode("ascii"))
        self._head = b"".join(head)

        def part(subtype: str) -> bytes:
            return (f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
                    "Content-Transfer-Encoding: quoted-printable\r\n\r\n").encode("ascii")

        # The body as a template: runs of fixed bytes, with a hole for each slot value.
        pieces: list[bytes | str] = [part("plain"), *_pieces(envelope.text, "text:"),
                                     b"\r\n" + part("html"), *_pieces(envelope.html, "html:"),
                                     f"\r\n--{boundary}--\r\n".encode("ascii")]
        self._body: list[bytes] = []
        self._holes: list[tuple[int, str]] = []
        for piece in pieces:
            if isinstance(piece, str):
                self._holes.append((len(self._body), piece))
                self._body.append(b"")
            elif self._body and (not self._holes or self._holes[-1][0] != len(self._body) - 1):
                self._body[-1] += piece
            else:
                self._body.append(piece)
        self._text_slots = {key[5:] for _, key in self._holes if key.startswith("text:")}
        self._html_slots = {key[5:] for _, key in self._holes if key.startswith("html:")}
        self._date_second = -1
        self._date = b""

    def _date_header(self) -> bytes:
        now = int(time.time())
        if now != self._date_second:  # formatdate costs microseconds; once a second is enough
            self._date_second = now
            self._date = f"Date: {formatdate(now, usegmt=True)}\r\n".encode("ascii")
        return self._date

    def headers_for(self, recipient: Recipient) -> bytes:
        """The per-recipient headers: Date, To, Message-ID, List-Unsubscribe."""
        unsubscribe = address_value(recipient.values["unsubscribe_url"], "unsubscribe URL")
        message_id = recipient.message_id
        if not (message_id.startswith("<") and message_id.endswith(">")):
            raise HeaderError(f"Message-ID must be <...>: {message_id!r}")
        address_value(message_id[1:-1], "Message-ID")
        return b"".join((
            self._date_header(),
            f"To: {mailbox(recipient.name, recipient.email)}\r\n"
            f"Message-ID: {message_id}\r\n"
            # RFC 8058 3.1: an HTTPS URI; RFC 2369 wants it in angle brackets.
            f"List-Unsubscribe: <{unsubscribe}>\r\n".encode("ascii"),
        ))

    def build(self, recipient: Recipient) -> bytes:
        """One copy's bytes. Raises HeaderError when the recipient's address or values
        cannot go into a header (the caller reports that recipient as invalid)."""
        values: Mapping[str, str] = recipient.values
        encoded = {"text:" + slot: qp_encode(values[slot]) for slot in self._text_slots}
        escaped = html_values(values)
        encoded.update(("html:" + slot, qp_encode(escaped[slot])) for slot in self._html_slots)
        body = self._body.copy()
        for index, slot in self._holes:
            body[index] = encoded[slot]
        return self.headers_for(recipient) + self._head + b"".join(body)
