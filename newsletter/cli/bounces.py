"""`newsletter bounces ...`: bounces and complaints that come back by mail (README: Bounces
by mail)."""

from __future__ import annotations

from pathlib import Path

import click

from newsletter.cli import AppContext, cli, pass_app


@cli.group()
def bounces() -> None:
    """Read bounces and complaints that came back by mail (NEWSLETTER_BOUNCE_ADDRESS)."""


@bounces.command("process")
@click.argument("paths", nargs=-1, required=True,
                type=click.Path(path_type=Path, exists=False))
@pass_app
def process(app: AppContext, paths: tuple[Path, ...]) -> None:
    """Process bounce mail from PATHS: message files, mboxes or maildirs.

    Hard bounces fail their delivery and suppress the address; soft ones are counted and
    suppress after NEWSLETTER_SOFT_BOUNCE_LIMIT within 30 days; abuse reports (ARF) mark
    the subscriber complained. Auto-replies and anything else are counted and left alone.
    A message processed before changes nothing.
    """
    from newsletter.bounces import sources
    from newsletter.bounces.process import Processor, summary

    sources.check(list(paths))
    processor = Processor(app.settings, app.engine)
    for path in paths:
        processor.all(sources.messages(path))
    click.echo(summary(processor.tally))


@bounces.command("fetch")
@pass_app
def fetch(app: AppContext) -> None:
    """Process every message in the NEWSLETTER_BOUNCE_IMAP_URL mailbox, then move each to
    NEWSLETTER_BOUNCE_IMAP_DONE_FOLDER. The daemon does this every
    NEWSLETTER_BOUNCE_FETCH_MINUTES when that is set."""
    from newsletter.bounces import imap
    from newsletter.bounces.process import summary

    click.echo(summary(imap.fetch(app.settings, app.engine)))
