"""SMTP relay: one connection reused for every message of a worker (RFC 5321).

Replies decide each recipient's fate through smtp_replies (beside this): 421 means the server is
closing the channel (RFC 5321 3.8), so reconnect and try that message once more; other
4xx are transient; a 5xx about the address fails that copy; a 5xx about the message, the
relay or our sender ends the batch with a TransportError that stops the run. After any
refusal the transaction is reset (RSET, RFC 5321 4.1.1.5), so no state leaks into the next
message.
DATA is written with smtplib's low-level calls: the MIME builder's bytes already have CRLF
line ends and no line starting with ".", so smtplib's per-message regex passes
(`_fix_eols`, `_quote_periods` in `SMTP.data`) are skipped, and only what is put in front
of those bytes (the DKIM header) is dot-stuffed (RFC 5321 4.5.2): a search of the whole
message, ~100 us for a 110 KB edition, was a third of a copy's cost.
"""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence

from newsletter.errors import AuthRefused, ConfigError, TransportBug, TransportError
from newsletter.mail.failures import Cause
from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.mail.mime import HeaderError, encode_address
from newsletter.mail.verp import Verp
from newsletter.providers.base import MimeTransport, unsendable
from newsletter.providers.dkim import DkimSigner
from newsletter.providers.smtp_replies import Stage, smtp_cause
from newsletter.settings import Settings


class _Reconnect(Exception):
    """The message was certainly not taken (421, or the link broke before the final dot)."""


class SmtpTransport(MimeTransport):
    name = "smtp"
    max_batch = 100

    def __init__(self, settings: Settings, *, ssl_context: ssl.SSLContext | None = None):
        super().__init__(settings)
        if settings.smtp_username and settings.smtp_password is None:
            raise ConfigError("NEWSLETTER_SMTP_PASSWORD is not set, "
                              "but NEWSLETTER_SMTP_USERNAME is")
        # Tests pass a context trusting their own certificate; operators get the system CAs.
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.signer = DkimSigner.from_settings(settings)
        # NEWSLETTER_BOUNCE_ADDRESS: each copy's MAIL FROM names its delivery (VERP); the
        # From header and the DKIM signature (d= the From domain) stay as they are.
        self.verp = Verp.from_settings(settings)
        # Checked when the transport is made, before an edition is frozen.
        _envelope_sender(self.verp.address if self.verp else settings.sender_address)
        self.connection: smtplib.SMTP | None = None

    def open(self) -> None:
        if self.connection is not None:
            return
        s = self.settings
        where = f"SMTP server {s.smtp_host}:{s.smtp_port}"
        connection: smtplib.SMTP | None = None
        try:
            if s.smtp_security == "ssl":
                connection = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout,
                                              context=self.ssl_context)
            else:
                connection = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=s.smtp_timeout)
            connection.ehlo()
            if s.smtp_security == "starttls":
                connection.starttls(context=self.ssl_context)
                connection.ehlo()
            if s.smtp_username:
                connection.login(s.smtp_username, s.smtp_password or "")
        except smtplib.SMTPAuthenticationError as err:
            _drop(connection)
            raise AuthRefused(f"{where} refused the username and password "
                              f"({err.smtp_code} {_text(err.smtp_error)})",
                              status=err.smtp_code, body=_text(err.smtp_error)) from None
        except ssl.SSLError as err:
            _drop(connection)
            raise TransportError(f"TLS with {where} failed: {err}") from None
        except (smtplib.SMTPException, OSError) as err:
            _drop(connection)
            raise TransportError(f"cannot talk to {where}: {err}",
                                 cause=Cause.TRANSIENT) from None
        self.connection = connection

    def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                connection.close()

    def send_batch(self, envelope: Envelope, recipients: Sequence[Recipient]) -> list[Result]:
        self.check_batch(recipients)
        builder = self.builder(envelope)
        mail_from = _envelope_sender(builder.sender_address)
        self.open()  # no connection at all: the whole call failed
        results: list[Result] = []
        try:
            for recipient in recipients:
                try:
                    address = encode_address(recipient.email)
                    data = builder.build(recipient)
                except HeaderError as err:
                    results.append(unsendable(recipient, err))
                    continue
                if self.signer:
                    data = self.signer.header(data).replace(b"\r\n.", b"\r\n..") + data
                sender = (self.verp.return_path(recipient.delivery_id) if self.verp
                          else mail_from)
                results.append(self._deliver(sender, recipient, address, data))
        except TransportError as err:  # the server went away or refused us: keep what it took
            err.partial = results
            err.untouched = list(recipients[len(results):])
            raise
        except Exception as err:  # a bug: keep what it took; the copy in hand may have gone
            bug = TransportBug(self.name, err)
            bug.partial, bug.untouched = results, list(recipients[len(results) + 1:])
            raise bug from err
        return results

    def _deliver(self, sender: str, recipient: Recipient, address: str, data: bytes) -> Result:
        error = ""
        for _attempt in range(2):
            self.open()  # cannot reconnect: the whole call fails (TransportError)
            try:
                return self._transaction(sender, recipient, address, data)
            except _Reconnect as err:
                _drop(self.connection)
                self.connection = None
                error = str(err)
        return Result(recipient, "failed", error=error, cause=Cause.TRANSIENT)

    def _transaction(self, sender: str, recipient: Recipient, address: str,
                     data: bytes) -> Result:
        connection = self.connection
        assert connection is not None
        try:
            stage, code, reply = _envelope(connection, sender, address)
            if code != 354:
                return _refused(recipient, stage, code, reply, connection)
            connection.send(data + b".\r\n")
        except (smtplib.SMTPException, OSError) as err:
            raise _Reconnect(f"connection lost before the message was sent: {err}") from None
        try:
            code, reply = connection.getreply()
        except (smtplib.SMTPException, OSError) as err:
            # The server may have queued it before we heard back: the crash window.
            _drop(connection)
            self.connection = None
            return Result(recipient, "failed", cause=Cause.AMBIGUOUS,
                          error=f"no reply after the message was sent, it may have been "
                                f"delivered: {err}")
        if code == 250:
            return Result(recipient, "sent", provider_id=_text(reply))
        return _refused(recipient, "data", code, reply, connection)


def _envelope(connection: smtplib.SMTP, sender: str,
              address: str) -> tuple[Stage, int, bytes]:
    """MAIL, RCPT, DATA: the first reply that is not a success (with the command it
    answered), or DATA's 354.

    With PIPELINING (RFC 2920) the three commands go in one write and the replies are
    read after: one round trip instead of three, per message."""
    # Both are plain addr-specs already (encode_address, here and in SmtpTransport): written
    # as they are, not through smtplib.quoteaddr, whose parse cost ~10% of a copy.
    commands = [f"MAIL FROM:<{sender}>", f"RCPT TO:<{address}>", "DATA"]
    stages: tuple[Stage, ...] = ("mail", "rcpt", "data")
    if not connection.has_extn("pipelining"):
        for stage, command in zip(stages, commands, strict=True):
            code, reply = connection.docmd(command)
            if code not in (250, 251):
                return stage, code, reply
        return "data", code, reply
    connection.send("".join(c + "\r\n" for c in commands))
    replies = [connection.getreply() for _ in commands]
    failed = next(((s, c, r) for s, (c, r) in zip(stages[:2], replies[:2], strict=True)
                   if c not in (250, 251)), None)
    if failed is None:
        return ("data", *replies[2])
    if replies[2][0] == 354:  # a server must refuse DATA then (RFC 2920 3.1); if not,
        connection.send(".\r\n")  # end the empty message so the channel stays in step
        connection.getreply()
    return failed

def _refused(recipient: Recipient, stage: Stage, code: int, reply: bytes,
             connection: smtplib.SMTP) -> Result:
    text = f"{code} {_text(reply)}"
    if code == 421:
        raise _Reconnect(text)
    try:
        # End the transaction, refused at MAIL, RCPT or DATA, so that nothing of it
        # leaks into the next message (a server left mid-transaction answers the next
        # MAIL with 503, which would then be misread).
        connection.rset()
    except (smtplib.SMTPException, OSError) as err:
        raise _Reconnect(f"{text}; then {err}") from None
    cause = smtp_cause(code, _text(reply), stage)
    if cause.stops_run:
        raise TransportError(f"the SMTP server refused the message at {stage.upper()}, "
                             f"so every copy would fail the same way: {text}",
                             cause=cause, status=code, body=_text(reply))
    return Result(recipient, "failed", error=text, cause=cause)


def _envelope_sender(address: str) -> str:
    """Our address as it goes into MAIL FROM, written as it is (an internationalised domain
    as IDNA); one that cannot stops the run before anything is sent."""
    try:
        return encode_address(address)
    except HeaderError as err:
        raise ConfigError(f"the envelope sender: {err}; check NEWSLETTER_FROM and "
                          "NEWSLETTER_BOUNCE_ADDRESS") from None


def _drop(connection: smtplib.SMTP | None) -> None:
    if connection is not None:
        connection.close()


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply
