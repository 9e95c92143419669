"""Sending the mail queue (newsletter.store.mail_queue): claim due emails, decide which
still need sending, send them in one call per kind, record each fate.

Three things drain it: the daemon (`newsletter schedule`, a thread beside the daily send),
`newsletter outbox drain` (cron or a one-off), and a thread in `newsletter serve`. Any
number may run at once: claims are disjoint. A slow or dead provider holds only the drainer.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from newsletter.errors import NewsletterError, TransportError
from newsletter.mail.failures import Cause
from newsletter.mail.links import Links
from newsletter.mail.message import Envelope, Recipient, Result
from newsletter.providers import Transport, get_transport
from newsletter.render.confirmation import render_confirmation
from newsletter.render.manage_link import render_manage_link
from newsletter.settings import Settings
from newsletter.store import mail_queue
from newsletter.store.mail_queue import CONFIRM, MANAGE_LINK, Claimed, Outcome
from newsletter.store.models import MailState, SubscriberStatus, SuppressionReason

log = logging.getLogger(__name__)
PER_DAY = 3  # emails from the queue to one address a day: the form cannot flood an inbox
BATCH = 50
RENDER = {CONFIRM: render_confirmation, MANAGE_LINK: render_manage_link}


@dataclass
class DrainReport:
    counts: dict[str, int] = field(default_factory=lambda: {s.value: 0 for s in MailState})

    def add(self, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            self.counts[outcome.state.value] += 1

    @property
    def summary(self) -> str:
        c = self.counts
        return (f"mail queue: sent {c['sent']}, to retry {c['queued']}, failed {c['failed']}, "
                f"dropped {c['dropped']}")


class MailDrain:
    def __init__(self, settings: Settings, engine: Engine,
                 transport: Callable[[Settings], Transport] = get_transport):
        self.settings, self.engine, self.transport = settings, engine, transport
        self.links = Links(settings)
        self._envelopes: dict[str, Envelope] = {}

    def drain(self, stop: threading.Event | None = None) -> DrainReport:
        """Send everything due now, batch by batch, until nothing is due (or `stop`)."""
        report = DrainReport()
        while not (stop and stop.is_set()):
            claimed = mail_queue.claim(self.engine, BATCH, self.settings.lease_seconds)
            if not claimed:
                break
            outcomes = self.send(claimed)
            mail_queue.record(self.engine, outcomes)
            report.add(outcomes)
        return report

    def run_forever(self, stop: threading.Event, every: float) -> None:
        """Drain every `every` seconds until `stop`; trouble is logged, never fatal."""
        while not stop.is_set():
            try:
                report = self.drain(stop)
            except (NewsletterError, SQLAlchemyError) as err:
                log.error("mail queue: drain failed, trying again in %gs: %s", every, err)
            else:
                if any(report.counts.values()):
                    log.info(report.summary)
            stop.wait(every)

    def start(self, stop: threading.Event, every: float) -> threading.Thread:
        thread = threading.Thread(target=self.run_forever, args=(stop, every),
                                  name="mail-queue", daemon=True)
        thread.start()
        return thread

    def send(self, claimed: list[Claimed]) -> list[Outcome]:
        # Of several requests for one address in a batch only the latest goes (its link
        # carries that request's name); a provider may refuse an address twice in one call.
        latest = {(item.subscriber_id, item.kind): item for item in claimed}
        outcomes, due = [], {}
        for item in claimed:
            why = _drop_reason(item) or (
                None if latest[item.subscriber_id, item.kind] is item
                else "a later request for the same address went instead")
            if why:
                outcomes.append(Outcome(item, MailState.DROPPED, why))
            else:
                due.setdefault(item.kind, []).append(item)
        if not due:
            return outcomes
        sent: list[Outcome] = []
        try:
            with self.transport(self.settings) as transport:
                for kind, items in due.items():
                    sent += self._send_kind(transport, kind, items)
        except TransportError as err:  # no connection at all: all the rest tries again
            log.warning("mail queue: cannot reach the provider, will retry: %s", err)
            done = {o.id for o in sent}
            sent += [Outcome(item, MailState.QUEUED, str(err))
                     for items in due.values() for item in items if item.id not in done]
        return outcomes + sent

    def _send_kind(self, transport: Transport, kind: str, items: list[Claimed]) -> list[Outcome]:
        recipients = [self.recipient(item) for item in items]
        try:
            results = transport.send_batch(self.envelope(kind), recipients)
        except TransportError as err:  # the whole call failed: every email tries again
            log.warning("mail queue: %s emails not sent, will retry: %s", kind, err)
            return [Outcome(item, MailState.QUEUED, str(err)) for item in items]
        return [_outcome(item, result) for item, result in zip(items, results, strict=True)]

    def envelope(self, kind: str) -> Envelope:
        if kind not in self._envelopes:  # rendered once per process
            subject, email = RENDER[kind](self.settings)
            self._envelopes[kind] = Envelope.from_settings(self.settings, subject, email.html,
                                                           email.text)
        return self._envelopes[kind]

    def recipient(self, item: Claimed) -> Recipient:
        # The unsubscribe link works for a pending person too: "I never asked for this"
        # suppresses the address, so nobody can keep signing it up.
        values = self.links.values(item.subscriber_id, item.email, self.settings.today())
        if item.kind == CONFIRM:
            values["confirm_url"] = self.links.confirm_url(item.subscriber_id, item.id)
        return Recipient(email=item.email, name=item.name, values=values)


def _drop_reason(item: Claimed) -> str | None:
    if item.suppressed == SuppressionReason.COMPLAINED:
        return "a complaint was reported for this address: it is never mailed again"
    if item.kind == CONFIRM and item.status == SubscriberStatus.CONFIRMED:
        return "already confirmed"
    if item.sent_today >= PER_DAY:
        return f"{PER_DAY} emails reached this address in the last day"
    return None


def _outcome(item: Claimed, result: Result) -> Outcome:
    """Sent; failed for good when the refusal is about the address or its recipient;
    otherwise tried again (a duplicate confirmation harms nobody, and a refusal about us,
    a relay or our key may be fixed within the day). Nobody is suppressed from here: a
    pending address never consented, and housekeeping forgets it after a week."""
    if result.delivered:
        return Outcome(item, MailState.SENT)
    error = f"{result.cause}: {result.error}"
    if result.cause in (Cause.ADDRESS, Cause.RECIPIENT):
        return Outcome(item, MailState.FAILED, error)
    return Outcome(item, MailState.QUEUED, error)
