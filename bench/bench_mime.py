"""Per-copy cost of the fast MIME builder against the email package, in one run.

    .venv/bin/python bench/bench_mime.py [copies]

The edition is the size of a real one (~90 KB of HTML, ~30 KB of text, a few slots).
"""

from __future__ import annotations

import sys
import time
from email.message import EmailMessage
from email.utils import formatdate

from newsletter.mail.message import Envelope, Recipient
from newsletter.mail.mime import MimeBuilder
from newsletter.render.slots import SlottedText

STORY = ("<tr><td style=\"padding:8px 0px;color:#1a1a1a\"><h2>Story title with ümlauts "
         "&amp; = signs</h2><p>" + "Every side of the story, told fairly. " * 20
         + "</p></td></tr>\n")
HTML = SlottedText(("<!DOCTYPE html><html lang=\"en\"><body><a href=\"", "\">View in browser</a>"
                    + STORY * 90 + "<p>Manage: <a href=\"", "\">preferences</a> · <a href=\"",
                    "\">unsubscribe</a> · sent to ", "</p></body></html>\n"),
                   ("webview_url", "preferences_url", "unsubscribe_url", "email"))
TEXT = SlottedText(("View in browser: ", "\n\n" + "Every side of the story, told fairly. " * 800
                    + "\nPreferences: ", "\nUnsubscribe: ", "\nSent to ", "\n"),
                   ("webview_url", "preferences_url", "unsubscribe_url", "email"))
ENVELOPE = Envelope(sender="The Daily Spin <news@example.org>", subject="The Daily Spin: Ünïcode",
                    html=HTML, text=TEXT, list_id="The Daily Spin <daily.example.org>")


def recipient(n: int) -> Recipient:
    token = f"{n}.AbCdEfGhIjKlMnOpQrStUvWxYz012"
    return Recipient(f"reader{n}@example.com", f"Reader Nümber {n}", {
        "email": f"reader{n}@example.com",
        "unsubscribe_url": f"https://news.example.org/unsubscribe/{token}",
        "preferences_url": f"https://news.example.org/preferences/{token}",
        "webview_url": "https://news.example.org/archive/2024-05-01"})


def email_package(r: Recipient) -> bytes:
    message = EmailMessage()
    message["From"] = ENVELOPE.sender
    message["To"] = f"{r.name} <{r.email}>"
    message["Subject"] = ENVELOPE.subject
    message["Date"] = formatdate(usegmt=True)
    message["Message-ID"] = r.message_id
    message["List-Id"] = ENVELOPE.list_id
    message["List-Unsubscribe"] = f"<{r.values['unsubscribe_url']}>"
    message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(TEXT.fill(r.values), cte="quoted-printable")
    message.add_alternative(HTML.fill(r.values), subtype="html", cte="quoted-printable")
    return message.as_bytes()


def per_copy(build, recipients: list[Recipient]) -> float:
    start = time.perf_counter()
    for r in recipients:
        build(r)
    return (time.perf_counter() - start) / len(recipients)


def main() -> None:
    copies = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    recipients = [recipient(n) for n in range(copies)]
    start = time.perf_counter()
    builder = MimeBuilder(ENVELOPE)
    setup = time.perf_counter() - start
    fast = per_copy(builder.build, recipients)
    slow = per_copy(email_package, recipients[: max(20, copies // 20)])
    size = len(builder.build(recipients[0]))
    print(f"copy size {size / 1024:.0f} KB; MimeBuilder set-up once: {setup * 1e3:.1f} ms")
    print(f"MimeBuilder.build:        {fast * 1e6:8.1f} us per copy")
    print(f"email.message.EmailMessage: {slow * 1e6:8.1f} us per copy")
    print(f"ratio: {slow / fast:.0f}x faster")


if __name__ == "__main__":
    main()
