"""Fetching bounces from an IMAP mailbox (NEWSLETTER_BOUNCE_IMAP_URL) with imaplib.

`imaps://user:password@host[:993]/INBOX` speaks TLS from the start (RFC 8314);
`imap://user:password@host[:143]/INBOX` upgrades with STARTTLS (RFC 3501 6.2.1) and never
sends the password in the clear. Each message is processed and committed, then moved to
NEWSLETTER_BOUNCE_IMAP_DONE_FOLDER (UID MOVE, RFC 6851; COPY, \\Deleted and EXPUNGE where
the server lacks it). A crash between the two leaves the message in place; the next fetch
reads it again and its remembered Message-ID makes that harmless.
"""

from __future__ import annotations

import imaplib
import ssl
from collections import Counter
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from sqlalchemy import Engine

from newsletter.bounces.process import Processor
from newsletter.errors import ConfigError, NewsletterError
from newsletter.settings import Settings


class MailboxError(NewsletterError):
    """The bounce mailbox cannot be reached, refused the login, or failed a command."""


@dataclass(frozen=True)
class ImapUrl:
    secure: bool  # imaps: TLS from the start; imap: STARTTLS
    host: str
    port: int
    username: str
    password: str
    folder: str

    @classmethod
    def parse(cls, url: str) -> ImapUrl:
        parts = urlsplit(url)
        if parts.scheme not in ("imap", "imaps") or not parts.hostname or not parts.username:
            raise ConfigError("NEWSLETTER_BOUNCE_IMAP_URL: expected imaps://user:password@host/INBOX")
        secure = parts.scheme == "imaps"
        return cls(secure, parts.hostname, parts.port or (993 if secure else 143),
                   unquote(parts.username), unquote(parts.password or ""),
                   unquote(parts.path.lstrip("/")) or "INBOX")

    @property
    def where(self) -> str:  # for messages: never the password
        return f"IMAP server {self.host}:{self.port}"


def fetch(settings: Settings, engine: Engine, *,
          ssl_context: ssl.SSLContext | None = None) -> Counter[str]:
    """Process every message in the bounce mailbox; returns the tally."""
    if not settings.bounce_imap_url:
        raise ConfigError("NEWSLETTER_BOUNCE_IMAP_URL is not set: it names the mailbox "
                          "bounces arrive in, e.g. imaps://user:password@host/INBOX")
    url = ImapUrl.parse(settings.bounce_imap_url)
    processor = Processor(settings, engine)
    # Tests pass a context trusting their own certificate; operators get the system CAs.
    context = ssl_context or ssl.create_default_context()
    done = settings.bounce_imap_done_folder
    try:
        with _connect(url, context) as imap:
            _ok(imap.login(url.username, url.password), url, "login")
            _ok(imap.select(_quote(url.folder)), url, f"select {url.folder}")
            imap.create(_quote(done))  # NO when it exists already: fine
            uids = _ok(imap.uid("SEARCH", None, "ALL"), url, "search")[0].split()
            for uid in uids:
                data = _ok(imap.uid("FETCH", uid, "(BODY.PEEK[])"), url, "fetch")
                raw = next((item[1] for item in data if isinstance(item, tuple)), None)
                if raw is None:
                    continue  # expunged meanwhile by another reader
                processor.one(f"{url.folder} uid {uid.decode()}", raw)
                _move(imap, uid, done, url)
    except imaplib.IMAP4.error as err:
        raise MailboxError(f"{url.where}: {_said(err)}") from None
    except ssl.SSLError as err:
        raise MailboxError(f"TLS with {url.where} failed: {err}") from None
    except OSError as err:
        raise MailboxError(f"cannot talk to {url.where}: {err}") from None
    return processor.tally


def _connect(url: ImapUrl, context: ssl.SSLContext) -> imaplib.IMAP4:
    if url.secure:
        return imaplib.IMAP4_SSL(url.host, url.port, ssl_context=context, timeout=30)
    imap = imaplib.IMAP4(url.host, url.port, timeout=30)
    try:
        imap.starttls(ssl_context=context)
    except BaseException:
        imap.shutdown()
        raise
    return imap


def _move(imap: imaplib.IMAP4, uid: bytes, folder: str, url: ImapUrl) -> None:
    if "MOVE" in imap.capabilities:
        _ok(imap.uid("MOVE", uid, _quote(folder)), url, f"move to {folder}")
        return
    _ok(imap.uid("COPY", uid, _quote(folder)), url, f"copy to {folder}")
    _ok(imap.uid("STORE", uid, "+FLAGS.SILENT", r"(\Deleted)"), url, "flag as deleted")
    _ok(imap.expunge(), url, "expunge")


def _ok(answer: tuple[str, list], url: ImapUrl, what: str) -> list:
    status, data = answer
    if status != "OK":
        raise MailboxError(f"{url.where} refused {what}: {_said(data)}")
    return data


def _quote(name: str) -> str:
    """A mailbox name as an IMAP quoted string (RFC 3501 4.3): names may hold spaces."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _said(value: object) -> str:
    if isinstance(value, list):
        value = b" ".join(v for v in value if isinstance(v, bytes))
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return str(value).strip()
