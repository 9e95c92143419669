"""`newsletter prune`: keep the ledger's size bounded (newsletter.delivery.prune)."""

from __future__ import annotations

import click

from newsletter.cli import AppContext, cli, pass_app


@cli.command()
@click.option("--keep-days", type=click.IntRange(min=1), default=None,
              help="Keep per-recipient rows this many days [default: NEWSLETTER_KEEP_DAYS, 90].")
@pass_app
def prune(app: AppContext, keep_days: int | None) -> None:
    """Delete the per-recipient delivery rows of editions older than N days.

    Each edition keeps its counts by state first, so `status --date` still answers for it;
    rows go in small batches, so a send or `status` running meanwhile hardly waits.
    """
    from newsletter.delivery.prune import prune as prune_ledger

    days = keep_days or app.settings.keep_days
    report = prune_ledger(app.engine, days, app.settings.today())
    click.echo(f"pruned {report.rows} delivery rows of {report.editions} editions older than "
               f"{days} days")
