"""Who a refusal is about: the one vocabulary that decides whether a copy is retried,
parked, failed, whether its address is suppressed, and whether the whole run must stop.

Each provider reads its own answers into a Cause beside its transport: SMTP replies in
newsletter.providers.smtp_replies, HTTP statuses in newsletter.providers.http, Postmark's
error codes in newsletter.providers.postmark. Only an answer about the address itself
suppresses anyone; an answer about the message, the relay or our configuration stops the
run with nobody suppressed (docs/ARCHITECTURE.md, "Failures").
"""

from __future__ import annotations

import enum


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
