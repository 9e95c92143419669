"""Reading one message that came back: a bounce, a complaint, an auto-reply, or none.

Standard reports are read with the email package: a delivery status notification is a
multipart/report with a message/delivery-status part (RFC 3464: one per-message block, then
one block per recipient with Final-Recipient, Action and Status), a complaint one with a
message/feedback-report part (ARF, RFC 5965: Feedback-Type, Original-Mail-From,
Original-Rcpt-To). Everything else (qmail, old Exim, vendor formats) goes to flufl.bounce's
detectors, which find the failed addresses and whether the failure is permanent. Only then
is a message taken for an auto-reply (RFC 3834 Auto-Submitted and the vendors' headers):
bounces carry Auto-Submitted too.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import logging
import re
from dataclasses import dataclass
from email.message import Message
from email.utils import getaddresses
from typing import Literal

from flufl.bounce import all_failures

log = logging.getLogger(__name__)
Kind = Literal["bounce", "complaint", "auto-reply", "unrecognised"]

_STATUS = re.compile(r"\b([245])\.(\d{1,3})\.(\d{1,3})\b")
# Headers of the bounce that carry the address it was sent to: our VERP return path.
_TO_HEADERS = ("To", "Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "Cc")
_AUTO_SUBJECT = re.compile(r"^\s*(auto(matic)?[ -]?(reply|response|antwort)|out of (the )?office"
                           r"|abwesenheitsnotiz|r[ée]ponse automatique|away from)", re.I)


@dataclass(frozen=True)
class Failure:
    address: str        # lower case
    permanent: bool
    status: str = ""    # RFC 3463 code, when the report gives one
    detail: str = ""


@dataclass(frozen=True)
class Notice:
    kind: Kind
    message_key: str
    # Addresses the message was sent to or names as the original envelope sender: where a
    # VERP token may be (newsletter.mail.verp).
    return_paths: tuple[str, ...] = ()
    failures: tuple[Failure, ...] = ()
    complainant: str | None = None   # ARF Original-Rcpt-To, or the reported message's To
    feedback_type: str = ""


def read(raw: bytes) -> Notice:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    key = _message_key(message, raw)
    paths = _addresses(message, _TO_HEADERS)
    if message.get_content_type() == "multipart/report":
        report = (message.get_param("report-type") or "").lower()
        if report == "feedback-report":
            return _feedback(message, key, paths)
        if report == "delivery-status":
            failures = tuple(_dsn_failures(message))
            embedded = _embedded_return_paths(message)
            return Notice("bounce" if failures else "unrecognised", key, paths + embedded,
                          failures)
    failures = _library_failures(message)
    if failures:
        return Notice("bounce", key, paths + _embedded_return_paths(message), failures)
    if _auto_reply(message):
        return Notice("auto-reply", key, paths)
    return Notice("unrecognised", key, paths)


def _message_key(message: Message, raw: bytes) -> str:
    message_id = str(message.get("Message-ID") or "").strip()
    return hashlib.sha256(message_id.encode("utf-8", "surrogateescape") if message_id
                          else raw).hexdigest()


def _addresses(message: Message, names: tuple[str, ...]) -> tuple[str, ...]:
    values = [str(v) for name in names for v in message.get_all(name, [])]
    return tuple(dict.fromkeys(a.lower() for _, a in getaddresses(values) if "@" in a))


def _dsn_failures(message: Message):
    for part in message.walk():
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks[1:] if isinstance(blocks, list) else []:
            action = (block.get("Action") or "").strip().lower()
            if action not in ("failed", "delayed"):
                continue  # delivered, relayed, expanded: positive notices
            address = _typed_address(block.get("Final-Recipient")
                                     or block.get("Original-Recipient") or "")
            if not address:
                continue
            diagnostic = " ".join((block.get("Diagnostic-Code") or "").split())
            status = _status(block.get("Status") or "", diagnostic)
            permanent = action == "failed" and (status.startswith("5") or not status)
            yield Failure(address, permanent, status, diagnostic.partition(";")[2].strip()
                          or diagnostic)


def _status(field: str, diagnostic: str) -> str:
    """The Status field's code; when it says only X.0.0 (Exim writes 5.0.0 for every
    SMTP refusal), the remote server's own code of the same class from the diagnostic."""
    found = _STATUS.search(field) or _STATUS.search(diagnostic)
    if found is None:
        return ""
    if found.group(2, 3) == ("0", "0"):
        specific = _STATUS.search(diagnostic)
        if specific and specific.group(1) == found.group(1):
            return specific.group(0)
    return found.group(0)


def _typed_address(value: str) -> str:
    """`rfc822; someone@example.org` (RFC 3464 2.3.2) -> the address, lower case."""
    kind, _, address = value.partition(";")
    if not address:
        address = kind
    address = address.strip().strip("<>").lower()
    return address if "@" in address else ""


def _library_failures(message: Message) -> tuple[Failure, ...]:
    try:
        temporary, permanent = all_failures(message)
    except Exception:  # noqa: BLE001 - heuristics on untrusted mail: one odd message must
        log.warning("flufl.bounce could not read a message; taken as unrecognised",
                    exc_info=True)  # not stop the rest of the mailbox
        return ()
    found = [Failure(a.decode("utf-8", "replace").lower(), True, _text_status(message, a))
             for a in sorted(permanent)]
    found += [Failure(a.decode("utf-8", "replace").lower(), False)
              for a in sorted(temporary - permanent)]
    return tuple(f for f in found if "@" in f.address)


def _text_status(message: Message, address: bytes) -> str:
    """An enhanced status code written near the address in a plain-text bounce (qmail
    writes `(#5.1.1)` after the reason), else ""."""
    for part in message.walk():
        if part.get_content_maintype() != "text":
            continue
        body = part.get_payload(decode=True) or b""
        at = body.lower().find(address.lower())
        if at >= 0:
            found = _STATUS.search(body[at:at + 600].decode("utf-8", "replace"))
            return found.group(0) if found else ""
    return ""


def _feedback(message: Message, key: str, paths: tuple[str, ...]) -> Notice:
    fields: Message | None = None
    for part in message.walk():
        if part.get_content_type() == "message/feedback-report":
            payload = part.get_payload()
            # The email package reads an unknown message/* body as one enclosed message:
            # the report's fields are its headers.
            fields = payload[0] if isinstance(payload, list) else email.message_from_string(
                str(payload))
            break
    if fields is None:
        return Notice("unrecognised", key, paths)
    embedded = _embedded_return_paths(message)
    mail_from = _addresses(fields, ("Original-Mail-From",))
    rcpt = _addresses(fields, ("Original-Rcpt-To",)) or _embedded(message, ("To",))
    return Notice("complaint", key, paths + mail_from + embedded,
                  complainant=rcpt[0] if rcpt else None,
                  feedback_type=(fields.get("Feedback-Type") or "").strip().lower())


def _embedded(message: Message, names: tuple[str, ...]) -> tuple[str, ...]:
    """Addresses in the headers of the message a report encloses (message/rfc822 or
    text/rfc822-headers)."""
    for part in message.walk():
        kind = part.get_content_type()
        if kind == "message/rfc822":
            payload = part.get_payload()
            if isinstance(payload, list) and payload:
                return _addresses(payload[0], names)
        elif kind == "text/rfc822-headers":
            headers = email.message_from_bytes(part.get_payload(decode=True) or b"")
            return _addresses(headers, names)
    return ()


def _embedded_return_paths(message: Message) -> tuple[str, ...]:
    return _embedded(message, ("Return-Path",))


def _auto_reply(message: Message) -> bool:
    submitted = (message.get("Auto-Submitted") or "no").strip().lower()
    return (submitted != "no"  # RFC 3834 5
            or any(message.get(h) for h in ("X-Autoreply", "X-Autorespond"))
            or (message.get("Precedence") or "").strip().lower() == "auto_reply"
            or bool(_AUTO_SUBJECT.match(str(message.get("Subject") or ""))))
