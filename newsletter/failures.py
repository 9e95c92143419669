"""Who a refusal is about, read from the server's answer: the one place that decides
whether a copy is retried, parked, failed, whether its address is suppressed, and whether
the whole run must stop.

SMTP replies are read enhanced status code first (RFC 3463 `class.subject.detail`), then
the basic code (RFC 5321 4.2), then the text, because servers use codes loosely. Only an
answer about the address itself (subject 1, and 5.2.1 mailbox disabled) suppresses
anyone; an answer about the message, the relay or our configuration stops the run with
nobody suppressed (docs/ARCHITECTURE.md, "Failures").
"""

from __future__ import annotations

import enum
import re
from typing import Literal

Stage = Literal["mail", "rcpt", "data"]

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Said in the text by relays that answer a bare 550 to mean "not for you": never the
# address's fault, whatever the basic code says.
_POLICY_WORDS = re.compile(
    r"relay|authenticat|\bauth\b|policy|blocked|block ?list|black ?list|spam|reputation"
    r"|dmarc|\bspf\b|dkim|denied|not permitted|sender", re.I)


class Cause(enum.StrEnum):
    ADDRESS = "address"      # the address does not exist or is disabled: fail, suppress
    RECIPIENT = "recipient"  # about this copy's recipient, not proof the address is dead
    #                          (mailbox full, an address we cannot encode): fail, no suppress
    MESSAGE = "message"      # size, content, security or relay policy: every copy would
    #                          fail the same way; stop the run
    CONFIG = "config"        # credentials, sender, relay, protocol, a bug of ours: stop
    TRANSIENT = "transient"  # try again later, within NEWSLETTER_RETRY_WINDOW
    AMBIGUOUS = "ambiguous"  # it may have gone out: `unknown`, resent only on request

    @property
    def stops_run(self) -> bool:
        """Retrying any copy cannot help until a person fixes something."""
        return self in (Cause.MESSAGE, Cause.CONFIG)

    @property
    def refusal(self) -> bool:
        """A permanent refusal of one copy: what the circuit breaker counts."""
        return self in (Cause.ADDRESS, Cause.RECIPIENT)


def smtp_cause(code: int, text: str, stage: Stage) -> Cause:
    """The cause of an SMTP reply `code text` to MAIL, RCPT or DATA (the final dot)."""
    if code == 421 or 400 <= code < 500 and not _ENHANCED.match(text):
        return Cause.TRANSIENT
    enhanced = _ENHANCED.match(text)
    if enhanced:
        klass, subject, detail = (int(g) for g in enhanced.groups())
        if klass == 4:
            return Cause.TRANSIENT
        if klass == 2:  # a success code on a refusal: the server is confused, not the person
            return Cause.CONFIG
        return _permanent(subject, detail, stage)
    if stage == "mail":
        return Cause.CONFIG  # about our sender address or our right to send
    if stage == "rcpt" and code in (550, 551, 553):
        # No enhanced code: address-level only for these (RFC 5321 4.2.3), unless the
        # words say the relay or a policy refused us.
        return Cause.CONFIG if _POLICY_WORDS.search(text) else Cause.ADDRESS
    if code == 552:  # exceeded storage: mailbox full at RCPT, message too big at DATA
        return Cause.RECIPIENT if stage == "rcpt" else Cause.MESSAGE
    if code in (500, 501, 502, 503, 504):
        return Cause.CONFIG  # a protocol error: ours or the relay's, never the reader's
    return Cause.MESSAGE  # 554 transaction failed, 550 at DATA...


def _permanent(subject: int, detail: int, stage: Stage) -> Cause:
    if stage == "mail":
        return Cause.CONFIG
    if subject == 1:
        # X.1.7 and X.1.8 are about the *sender's* address (RFC 3463 3.2).
        return Cause.CONFIG if detail in (7, 8) else Cause.ADDRESS
    if subject == 2:
        if detail == 1:
            return Cause.ADDRESS    # mailbox disabled, not accepting messages
        if detail == 3:
            return Cause.MESSAGE    # message longer than the mailbox accepts
        return Cause.RECIPIENT      # 5.2.2 full and the rest: permanent in name only
    if subject in (3, 6, 7):
        return Cause.MESSAGE        # mail system (5.3.4 too big), content, security/policy
    return Cause.CONFIG             # routing (4), protocol (5), anything unknown


def http_cause(status: int) -> Cause:
    """An ESP's whole-call HTTP answer. 502 and 504 come from a gateway in front of the
    API: the request may have been processed, so its fate is unknown. A provider's own 500
    is handled by the caller (retried a few times, then ambiguous)."""
    if status in (502, 504):
        return Cause.AMBIGUOUS
    if status in (408, 425, 429) or status >= 500:
        return Cause.TRANSIENT
    if status == 413:
        return Cause.MESSAGE
    return Cause.CONFIG  # 400 our request, 401/403 our key or sender, 404 our URL


# Postmark's API error codes (https://postmarkapp.com/developer/api/overview#error-codes).
POSTMARK_ADDRESS = {406}             # inactive recipient: bounced, complained, unsubscribed
POSTMARK_TRANSIENT = {100, 429}      # maintenance, rate limit


def postmark_cause(error_code: int | None) -> Cause:
    if error_code in POSTMARK_ADDRESS:
        return Cause.ADDRESS
    if error_code in POSTMARK_TRANSIENT:
        return Cause.TRANSIENT
    # 300 invalid request, 10 bad token, 400-413 sender/account problems, anything new:
    # about us, so nobody is suppressed.
    return Cause.CONFIG
