"""Prometheus metrics (prometheus_client): what a send run did, and the state of the store.

Two sources, exposed together or apart:

- `RUNS`: counters and histograms a process records while it sends (run outcomes and
  durations, messages by result, provider call latency, failures by class). The daemon
  serves them on NEWSLETTER_METRICS_PORT; a one-off `send` keeps them in memory only (its
  figures are also in the `runs` table and in the logs).
- `StoreCollector`: gauges read from the database at each scrape with a few grouped
  counts (deliveries of the latest editions by state, subscribers by status, the last
  completed edition, queued mail). Any process or worker reads the same values, so a
  gunicorn app needs no multiprocess mode; only a completed edition's counts are reused
  for COMPLETE_TTL (5 minutes) by each process, so a late bounce shows within that.

Names follow https://prometheus.io/docs/practices/naming/ (`newsletter_` prefix, base
units, `_total` for counters). Labels never carry personal data: dates, states, classes,
transport names.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from newsletter.store import mail_queue
from newsletter.store.db import reader
from newsletter.store.models import (
    Delivery,
    Edition,
    EditionStatus,
    MailState,
    Subscriber,
    utcnow,
)

log = logging.getLogger(__name__)
RECENT_EDITIONS = 7  # editions with a per-state series: bounded label values
COMPLETE_TTL = 300.0  # seconds a completed edition's counts are reused between scrapes

RUNS = CollectorRegistry()
SEND_RUNS = Counter("newsletter_send_runs", "Send runs by how they ended.", ["outcome"],
                    registry=RUNS)
SEND_RUN_SECONDS = Histogram(
    "newsletter_send_run_duration_seconds", "Wall time of a send run.", registry=RUNS,
    buckets=(1, 5, 15, 60, 300, 900, 1800, 3600, 7200, float("inf")))
MESSAGES = Counter("newsletter_messages", "Copies handed to a provider, by result.",
                   ["result"], registry=RUNS)
PROVIDER_SECONDS = Histogram(
    "newsletter_provider_request_duration_seconds",
    "Time for a provider to answer one batch (an SMTP conversation or an API call).",
    ["transport"], registry=RUNS,
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, float("inf")))
DAEMON_CHECKS = Counter("newsletter_daemon_checks", "The daemon's checks, by result.",
                        ["result"], registry=RUNS)
FAILURES = Counter("newsletter_delivery_failures", "Copies that failed, by cause; whole "
                   "calls that failed, by cause prefixed call_.", ["class"], registry=RUNS)


def count_results(tally: Mapping[tuple[str, str | None], int]) -> None:
    """A batch's copies, counted by (result, cause) once by the caller: each copy by
    result, each failed one by its cause (newsletter.mail.failures.Cause: address,
    recipient, message, config, transient, ambiguous). One inc() per label and batch:
    labels() costs ~2 us."""
    statuses: dict[str, int] = {}
    for (status, cause), count in tally.items():
        statuses[status] = statuses.get(status, 0) + count
        if cause is not None:
            FAILURES.labels(**{"class": cause}).inc(count)
    for status, count in statuses.items():
        MESSAGES.labels(result=status).inc(count)


def count_run(outcome: str, seconds: float) -> None:
    SEND_RUNS.labels(outcome=outcome.replace(" ", "_")).inc()
    SEND_RUN_SECONDS.observe(seconds)


class StoreCollector(Collector):
    """Gauges read from the database at each scrape; `newsletter_database_up` 0 when it
    cannot be read (the scrape still answers)."""

    def __init__(self, engine: Engine):
        self.engine = engine
        # Completed editions' counts by edition id, with when they were read: a finished
        # edition changes only by a late bounce, and counting a million-row edition on every
        # scrape (every 15 s, per worker) would cost more than the rest of the scrape.
        self.kept: dict[int, tuple[float, dict[str, int]]] = {}

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("newsletter_database_up",
                               "1 when the database answered this scrape.")
        try:
            families = list(self._read())
        except SQLAlchemyError as err:
            log.warning("metrics: cannot read the database: %s", type(err).__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families

    def _read(self) -> Iterator[Metric]:
        # Reads only: no write lock on SQLite, so a scrape never waits on a send.
        with Session(reader(self.engine)) as session:
            deliveries = GaugeMetricFamily(
                "newsletter_deliveries", f"Deliveries of the latest {RECENT_EDITIONS} "
                "editions by state.", labels=["edition", "state"])
            for date, counts in self._recent_counts(session):
                for state, count in counts.items():
                    deliveries.add_metric([date.isoformat(), state], count)
            yield deliveries
            subscribers = GaugeMetricFamily("newsletter_subscribers", "Subscribers by status.",
                                            labels=["status"])
            for status, count in session.execute(
                    select(Subscriber.status, func.count()).group_by(Subscriber.status)):
                subscribers.add_metric([status.value], count)
            yield subscribers
            last = session.scalar(select(func.max(Edition.completed_at)))
            if last is not None:
                yield GaugeMetricFamily(
                    "newsletter_last_successful_send_timestamp_seconds",
                    "When the latest edition to complete did (Unix time).",
                    value=_as_utc(last).timestamp())
            queue = GaugeMetricFamily(
                "newsletter_mail_queue_messages", "Transactional emails (confirmations, "
                "links) waiting or in flight, and those that ended in the last day, by state.",
                labels=["state"])
            since = utcnow() - mail_queue.LIFETIME
            for state, count in mail_queue.counts(session, since=since).items():
                queue.add_metric([state], count)
            yield queue
            oldest = mail_queue.oldest_waiting(session)
            yield GaugeMetricFamily(
                "newsletter_mail_queue_oldest_age_seconds",
                f"Age of the oldest {MailState.QUEUED} email (0 when none waits).",
                value=(utcnow() - _as_utc(oldest)).total_seconds() if oldest else 0)


    def _recent_counts(self, session: Session) -> list[tuple[dt.date, dict[str, int]]]:
        """The latest editions' deliveries by state: rolled up if pruned, kept for
        COMPLETE_TTL if complete, else counted now (only those, in one grouped query)."""
        now, kept = time.monotonic(), self.kept  # one reading: scrapes run in threads
        editions = session.execute(
            select(Edition.id, Edition.date, Edition.status, Edition.counts)
            .order_by(Edition.date.desc()).limit(RECENT_EDITIONS)).all()
        live = [e.id for e in editions if e.counts is None and not (
            e.status == EditionStatus.COMPLETE and e.id in kept
            and now - kept[e.id][0] < COMPLETE_TTL)]
        found: dict[int, dict[str, int]] = {edition: {} for edition in live}
        if live:
            for edition, state, count in session.execute(
                    select(Delivery.edition_id, Delivery.state, func.count())
                    .where(Delivery.edition_id.in_(live))
                    .group_by(Delivery.edition_id, Delivery.state)):
                found[edition][state.value] = count
        fresh = {e.id: (now, found[e.id]) if e.id in found else kept[e.id]
                 for e in editions if e.status == EditionStatus.COMPLETE and e.counts is None}
        self.kept = fresh
        # Pruned editions keep every state's count; only states with rows are shown, as live.
        return [(e.date, {state: n for state, n in e.counts.items() if n}
                 if e.counts is not None else found[e.id] if e.id in found else fresh[e.id][1])
                for e in editions]


def _as_utc(value: dt.datetime) -> dt.datetime:
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def registry(engine: Engine, *, runs: bool) -> CollectorRegistry:
    """The store's gauges, and this process's run metrics when `runs`."""
    combined = CollectorRegistry()
    combined.register(StoreCollector(engine))
    if runs:
        combined.register(RUNS)
    return combined
