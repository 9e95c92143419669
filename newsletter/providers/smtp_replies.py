"""What an SMTP reply says about who is refused (newsletter.mail.failures.Cause).

Replies are read enhanced status code first (RFC 3463 `class.subject.detail`), then the
basic code (RFC 5321 4.2), then the text, because servers use codes loosely. Subject 1 is
the address (5.1.1 no such user), 2 the mailbox (5.2.1 disabled; 5.2.2 full, permanent in
name only), 3 the mail system, 4 routing, 5 protocol, 6 content, 7 security or policy: only
the address (and 5.2.1) is about the person.
"""

from __future__ import annotations

import re
from typing import Literal

from newsletter.mail.failures import Cause

Stage = Literal["mail", "rcpt", "data"]

_ENHANCED = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
# Said in the text by relays that answer a bare 550 to mean "not for you": never the
# address's fault, whatever the basic code says.
_POLICY_WORDS = re.compile(
    r"relay|authenticat|\bauth\b|policy|blocked|block ?list|black ?list|spam|reputation"
    r"|dmarc|\bspf\b|dkim|denied|not permitted|sender", re.I)


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
