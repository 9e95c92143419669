"""`newsletter stories ...`: editors import, list and export the day's stories."""

from __future__ import annotations

import datetime as dt
import socket
from pathlib import Path

import click

from newsletter.cli import DATE, AppContext, cli, pass_app


@cli.group()
def stories() -> None:
    """Import, list and export stories."""


@stories.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--date", type=DATE, help="Day the stories belong to (default: today).")
@pass_app
def import_(app: AppContext, paths: tuple[str, ...], date: dt.date | None) -> None:
    """Import story files (text or JSON) or folders of them, all or nothing.

    Files are read and checked first; one bad file stops the import with its name, line
    and what was expected, and nothing is stored.
    """
    from newsletter.store.db import transaction
    from newsletter.stories.imports import import_stories, read_stories

    parsed = read_stories(paths)
    day = app.day(date)
    with transaction(app.sessions) as session:
        report = import_stories(session, parsed, day,
                                client=f"command line on {socket.gethostname()}")
    for story in report.added:
        click.echo(f"added    {day}  {story.title}  ({len(story.narratives)} narratives)")
    for story in report.replaced:
        click.echo(f"replaced {day}  {story.title}  ({len(story.narratives)} narratives)")
    if report.frozen_edition:
        click.echo(f"warning: the edition of {day} was already rendered for sending; "
                   "subscribers get that version", err=True)


@stories.command("list")
@click.option("--date", type=DATE, help="Day to list (default: today).")
@click.option("--full", is_flag=True, help="Print facts, narratives and sources too.")
@pass_app
def list_(app: AppContext, date: dt.date | None, full: bool) -> None:
    """The stories of a day, in order."""
    from newsletter.stories.imports import load_day

    day = app.day(date)
    with app.read_sessions() as session:
        day_stories = load_day(session, day)
    if not day_stories:
        click.echo(f"no stories for {day}")
        return
    for n, story in enumerate(day_stories, start=1):
        labels = ", ".join(narrative.label for narrative in story.narratives)
        click.echo(f"{n}. {story.title}  [{labels}]")
        if full:
            for fact in story.facts:
                click.echo(f"   • {fact}")
            for narrative in story.narratives:
                click.echo(f"   {narrative.label}: {narrative.text}")
            for source in story.sources:
                click.echo(f"   source: {source.label or ''} {source.url}".rstrip())


@stories.command("export")
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path))
@click.option("--date", type=DATE, help="Day to export (default: today).")
@pass_app
def export(app: AppContext, folder: Path, date: dt.date | None) -> None:
    """Write each story of a day into FOLDER as a file `stories import` reads back unchanged.

    Files are named NN_title.txt in the day's order, so importing the folder keeps it; a
    story the text format cannot hold exactly (some JSON imports) is written as .json.
    FOLDER is created if needed and must not hold story files already.
    """
    from newsletter.stories.imports import export_stories, require_day

    day = app.day(date)
    with app.sessions() as session:
        day_stories = require_day(session, day)
    for path in export_stories(day_stories, folder):
        click.echo(f"wrote {path}")
