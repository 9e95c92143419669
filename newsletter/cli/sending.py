"""`newsletter send` and `status`: operators send the day's edition and see what happened."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sys
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import click

from newsletter.cli import (
    DATE,
    AppContext,
    cli,
    on_signals,
    pass_app,
    warn_without_postal_address,
)
from newsletter.errors import SendError
from newsletter.ops.logs import progress_log

if TYPE_CHECKING:
    from sqlalchemy import Connection, Row

    from newsletter.bounces import report as bounce_report
    from newsletter.delivery import ledger
    from newsletter.delivery.report import Progress as SendProgress
    from newsletter.delivery.report import SendReport

EXIT_UNKNOWN = 3  # deliveries whose fate is unknown remain: the operator must decide


@contextlib.contextmanager
def progress_display(label: str) -> Iterator:
    """A rich bar on a terminal; otherwise a log line every 10% (text or JSON)."""
    if sys.stdout.isatty():
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        with Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                      TimeRemainingColumn(), transient=True) as bar:
            task = bar.add_task(label, total=None)
            yield lambda p: bar.update(task, total=p.total, completed=p.done)
        return
    shown = {"tenth": -1}

    def plain(p: SendProgress) -> None:
        tenth = p.done * 10 // p.total if p.total else 10
        if tenth != shown["tenth"]:
            shown["tenth"] = tenth
            progress_log.info("%s: %d/%d", label, p.done, p.total)
    yield plain


def send_edition(app: AppContext, date: dt.date, *, workers: int = 1,
                 resend_unknown: bool = False, retry_failed: bool = False,
                 stop: threading.Event | None = None, on_progress=None) -> SendReport:
    from newsletter.delivery.run import SendRun

    return SendRun(app.settings, app.engine, stop=stop, on_progress=on_progress).run_recorded(
        date, "send", workers=workers, resend_unknown=resend_unknown,
        retry_failed=retry_failed)


@cli.command()
@click.option("--date", type=DATE, help="Edition to send (default: today).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Parallel senders in this process (each with its own connection).")
@click.option("--resend-unknown", is_flag=True,
              help="Also resend deliveries whose fate is unknown (may duplicate).")
@click.option("--retry-failed", is_flag=True,
              help="Also resend failed deliveries, once their cause is fixed.")
@pass_app
def send(app: AppContext, date: dt.date | None, workers: int, resend_unknown: bool,
         retry_failed: bool) -> None:
    """Send the day's edition to every confirmed subscriber.

    Batched, idempotent and resumable: running it again sends nothing twice and picks up
    where a stopped or crashed run left off. Exit status 0 when every delivery reached a
    final state, 1 when the run stopped (a refusal about us, the circuit breaker, the
    retry window, bad configuration; the reason on stderr), 3 when some are of unknown
    fate (see `newsletter status --failures`).
    """
    day = app.day(date)
    warn_without_postal_address(app.settings)
    stop = threading.Event()  # SIGTERM/SIGINT: stop between batches, the one in flight recorded
    with on_signals(stop.set), progress_display(f"sending {day}") as show:
        report = send_edition(app, day, workers=workers, resend_unknown=resend_unknown,
                              retry_failed=retry_failed, stop=stop, on_progress=show)
    click.echo(report.summary)
    if report.stopped and not report.complete:
        raise SendError("stopped before the end; run `newsletter send` again to resume")
    if report.counts["unknown"]:
        progress_log.warning("%d deliveries may or may not have gone out (a provider's "
                             "answer that said neither, or a sender stopped mid-batch): "
                             "`newsletter status --failures` says which and why; "
                             "`newsletter send --resend-unknown` resends them",
                             report.counts["unknown"])
        sys.exit(EXIT_UNKNOWN)


@cli.command()
@click.option("--date", type=DATE, help="Edition to report (default: today).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@click.option("--failures", is_flag=True,
              help="List failed and unknown deliveries, grouped by the server's answer.")
@pass_app
def status(app: AppContext, date: dt.date | None, as_json: bool, failures: bool) -> None:
    """Delivery counts by state for a day's edition, and the daemon's last and next runs.

    Rows of a sender whose lease ran out show as unknown; a pruned edition answers with
    the counts kept when its rows were deleted.
    """
    from newsletter.bounces import report as bounce_report
    from newsletter.delivery.edition import find_edition
    from newsletter.delivery.tally import STATES, edition_counts
    from newsletter.store import mail_queue
    from newsletter.store.runs import last_runs
    from newsletter.store.tables import utcnow

    day = app.day(date)
    with app.reading() as conn:  # reads only: answers while a send is writing
        edition = find_edition(conn, day)
        if failures:
            _show_failures(day, _troubles(conn, edition.id) if edition else [],
                           bounce_report.later(conn, edition.id) if edition else [],
                           as_json)
            return
        counts = edition_counts(conn, edition) if edition else {s: 0 for s in STATES}
        runs = last_runs(conn)
        mail = mail_queue.counts(conn, since=utcnow() - mail_queue.LIFETIME)
        oldest = mail_queue.oldest_waiting(conn)
        by_mail = bounce_report.counts(conn, edition.id) if edition else {}
    info = {"date": day.isoformat(), "edition": edition.status.value if edition else None,
            **counts, "total": sum(counts.values()), "bounced_by_mail": by_mail,
            "last_run": _run_json(runs[0]) if runs else None,
            "next_run": _next_run(app),
            "mail_queue": {**mail, "oldest_queued": oldest.isoformat() if oldest else None}}
    if as_json:
        click.echo(json.dumps(info))
        return
    click.echo(f"edition {day}: {info['edition'] or 'not created yet'}")
    for state in STATES:
        click.echo(f"  {state:<8} {counts[state]}")
    if by_mail:  # newsletter bounces fetch / process: what came back after the send
        click.echo("came back by mail: " + ", ".join(f"{n} {k}" for k, n in by_mail.items()))
    if runs:
        click.echo(f"last run: {_run_line(runs[0])}")
    click.echo(f"next scheduled send: {info['next_run']}")
    click.echo("mail queue (confirmations, links; the last day): "
               + ", ".join(f"{n} {state}" for state, n in mail.items())
               + (f"; oldest queued since {oldest:%Y-%m-%d %H:%M:%S}Z" if oldest else ""))


def _troubles(conn: Connection, edition_id: int) -> list[ledger.Trouble]:
    """The ledger's failed and unknown copies, read through an ORM session on the same
    connection (the one listing of `status` that loads the ORM)."""
    from sqlalchemy.orm import Session

    from newsletter.delivery import ledger

    with Session(conn) as session:
        return ledger.troubles(session, edition_id)


def _show_failures(day: dt.date, troubles: list[ledger.Trouble],
                   later: list[bounce_report.Later], as_json: bool) -> None:
    groups: dict[str, list[ledger.Trouble]] = {}
    for trouble in troubles:
        groups.setdefault(trouble.error or "(no answer recorded)", []).append(trouble)
    if as_json:
        click.echo(json.dumps({"date": day.isoformat(), "failures": [
            {"answer": answer, "count": len(items), "deliveries": [
                {"email": t.email, "state": t.state, "cause": t.failure,
                 "at": t.at.isoformat() if t.at else None} for t in items]}
            for answer, items in groups.items()],
            "by_mail": [{"email": b.email, "kind": b.kind, "status": b.status,
                         "answer": b.detail, "at": b.at.isoformat()} for b in later]}))
        return
    if not groups and not later:
        click.echo(f"edition {day}: no failed or unknown deliveries")
        return
    for answer, items in sorted(groups.items(), key=lambda g: -len(g[1])):
        click.echo(f"{len(items)} x {answer}")
        for t in items:
            when = f"{t.at:%Y-%m-%d %H:%M:%S}Z" if t.at else ""
            click.echo(f"  {t.email}  {t.state}{f' ({t.failure})' if t.failure else ''}  {when}")
    if later:  # hard bounces by mail are failed deliveries above; these left them `sent`
        click.echo(f"{len(later)} came back by mail (soft, refused, complaints):")
        for b in later:
            click.echo(f"  {b.email}  {b.kind} {b.status or ''}  {b.at:%Y-%m-%d %H:%M:%S}Z  "
                       f"{b.detail or ''}".rstrip())


def _run_json(run: Row) -> dict:
    return {"kind": run.kind, "date": run.edition_date.isoformat() if run.edition_date else None,
            "started_at": run.started_at.isoformat(),
            "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            "outcome": run.outcome, "detail": run.detail}


def _run_line(run: Row) -> str:
    return (f"{run.kind} {run.edition_date} started {run.started_at:%Y-%m-%d %H:%M:%S}Z, "
            f"{run.outcome or 'running'}: {run.detail or ''}").rstrip(": ")


def _next_run(app: AppContext) -> str:
    # The daemon's own schedule (jobs.clock), DST policy included.
    from jobs.clock import next_slot

    s = app.settings
    slot = next_slot(dt.datetime.now(dt.UTC), s.send_time, s.zone)
    return slot.at.astimezone(s.zone).isoformat()
