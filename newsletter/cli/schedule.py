"""`newsletter schedule`: the daemon operators leave running (README: Running the daemon)."""

from __future__ import annotations

import logging

import click

from newsletter.cli import AppContext, cli, on_signals, pass_app


@cli.command()
@click.option("--reconcile-every", "every", type=click.FloatRange(min=0.1), default=300.0,
              show_default=True, metavar="SECONDS",
              help="How often to check for a missed send, late stories and retries.")
@pass_app
def schedule(app: AppContext, every: float) -> None:
    """Send each day's edition at NEWSLETTER_SEND_TIME in NEWSLETTER_TIMEZONE, until stopped.

    A send missed while the machine was down goes out when it is back, within
    NEWSLETTER_CATCHUP_HOURS; a day without stories sends nothing and keeps checking in that
    window. Never sends an edition twice, even with several daemons. SIGTERM or Ctrl-C stops
    it cleanly (exit 0): the batch in flight is recorded and the rest goes out on restart.
    One log line per event on stderr.
    """
    from jobs.daemon import Daemon

    logging.getLogger("jobs").setLevel(logging.INFO)  # the daemon's events, even without -v
    logging.getLogger("jobs.steps").setLevel(logging.INFO if app.verbose else logging.WARNING)
    daemon = Daemon(app.settings, app.engine, check_every=every)
    with on_signals(daemon.request_stop):
        daemon.run()
