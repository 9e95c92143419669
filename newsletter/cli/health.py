"""`newsletter health`: readiness and the day's state, for cron and monitoring scripts."""

from __future__ import annotations

import json
import sys

import click

from newsletter.cli import AppContext, cli, pass_app

EXIT_NEEDS_A_PERSON = 1


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="One JSON object, for scripts.")
@pass_app
def health(app: AppContext, as_json: bool) -> None:
    """Check that it is ready and that the day's edition went out.

    Ready: the database answers and its schema is current (never upgraded here). Today:
    the edition of the latest send time was sent or is going out, no delivery is of unknown
    fate, failed + unknown stay under NEWSLETTER_ALERT_FAILED_PERCENT, no sender died
    holding a batch, no queued mail is older than an hour. Exit status 0 when all is well,
    1 when something needs a person (each check on its own line says what).
    """
    from jobs.clock import latest_slot
    from newsletter.ops import health as checks
    from newsletter.store.db import make_engine
    from newsletter.store.tables import utcnow

    settings = app.settings
    engine = make_engine(settings.database_url)  # not app.engine: that would upgrade
    now = utcnow()
    slot = latest_slot(now, settings.send_time, settings.zone)
    found = checks.readiness(engine)
    if all(check.ok for check in found):
        found += checks.day_checks(engine, settings, slot.date, slot.at, now)
    engine.dispose()
    report = {**checks.as_json(found), "date": slot.date.isoformat()}
    if as_json:
        click.echo(json.dumps(report))
    else:
        for check in found:
            click.echo(f"{'ok' if check.ok else 'FAIL':<5} {check.name}: {check.detail}")
    if not report["ok"]:
        sys.exit(EXIT_NEEDS_A_PERSON)
