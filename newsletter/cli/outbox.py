"""`newsletter outbox drain`: send the queued transactional emails (sign-up confirmations,
fresh preferences links) once, for cron or by hand. The daemon and `newsletter serve`
drain the same queue on their own (newsletter.delivery.mail_drain)."""

from __future__ import annotations

import threading

import click

from newsletter.cli import AppContext, cli, on_signals, pass_app


@cli.group()
def outbox() -> None:
    """The queue of confirmation and link emails the web app asked for."""


@outbox.command("drain")
@pass_app
def drain(app: AppContext) -> None:
    """Send every queued email that is due, then exit.

    Safe beside the daemon and other drains (each email is claimed once). One that fails
    for a passing reason waits and is tried again by a later drain (1, 2, 4 ... 60
    minutes); one not sent within a day expires. `newsletter status` shows the queue.
    """
    from newsletter.delivery.mail_drain import MailDrain

    stop = threading.Event()
    with on_signals(stop.set):
        report = MailDrain(app.settings, app.engine).drain(stop)
    click.echo(report.summary)
