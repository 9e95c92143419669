"""`newsletter test-send`: the day's edition to a few editors, changing no state."""

from __future__ import annotations

import datetime as dt

import click

from newsletter.cli import DATE, AppContext, cli, pass_app
from newsletter.errors import NewsletterError


@cli.command("test-send")
@click.option("--date", type=DATE, help="Edition date (default: today).")
@click.option("--to", "addresses", multiple=True, metavar="ADDR",
              help="Send to this address (repeatable; default NEWSLETTER_TEST_RECIPIENTS).")
@pass_app
def test_send(app: AppContext, date: dt.date | None, addresses: tuple[str, ...]) -> None:
    """Send the day's edition, subject prefixed "[TEST] ", recording nothing."""
    from newsletter.delivery import testsend

    day = app.day(date)
    results = testsend.test_send(app.read_sessions, app.settings, day, addresses)
    click.echo(f"test send of the {day.isoformat()} edition through "
               f"{app.settings.transport}:")
    for result in results:
        where = result.provider_id or result.error or ""
        click.echo(f"  {result.status:<8} {result.recipient.email}  {where}")
    failed = [r for r in results if not r.delivered]
    if failed:
        raise NewsletterError(f"{len(failed)} of {len(results)} test emails did not go out")
