"""`newsletter render`: the day's edition as files, to look at before it goes out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING

import click

from newsletter.cli import DATE, AppContext, cli, pass_app, warn_without_postal_address
from newsletter.errors import NewsletterError

if TYPE_CHECKING:
    from newsletter.render.edition import RenderedEdition
    from newsletter.settings import Settings


@cli.command()
@click.option("--date", type=DATE, help="Edition date (default: today).")
@click.option("--out", "out", required=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder to write to.")
@click.option("--screenshots", is_flag=True,
              help="Also write desktop.png and phone.png (headless Chromium).")
@pass_app
def render(app: AppContext, date: dt.date | None, out: Path, screenshots: bool) -> None:
    """Render the day's edition to OUT/edition.html and OUT/edition.txt."""
    from newsletter.mail.links import slot_values
    from newsletter.render.edition import render_edition
    from newsletter.stories.imports import require_day

    day = app.day(date)
    warn_without_postal_address(app.settings)
    with app.read_sessions() as session:
        stories = require_day(session, day)
    edition = render_edition(stories, date=day, settings=app.settings)
    html, text = edition.personalise(slot_values(app.settings.base_url, day))
    out.mkdir(parents=True, exist_ok=True)
    written = [_write(out / "edition.html", html), _write(out / "edition.txt", text)]
    if screenshots:
        written += _screenshots(html, out)
    for path in written:
        click.echo(f"{path}  {_kb(path.stat().st_size)}")
    _report_budget(edition, app.settings)


def _screenshots(html: str, out: Path) -> list[Path]:
    try:  # Playwright is a test extra: needed only when pictures are asked for
        from newsletter.render.screenshots import take_screenshots
    except ImportError as err:
        raise NewsletterError("--screenshots needs Playwright: pip install -e '.[test]'") \
            from err
    return take_screenshots(html, out)


def _write(path: Path, content: str) -> Path:
    path.write_text(content, encoding="utf-8", newline="")
    return path


def _kb(size: int) -> str:
    return f"{size:,} bytes ({size / 1000:.1f} KB)"


def _report_budget(edition: RenderedEdition, settings: Settings) -> None:
    size = f"HTML {edition.html_size / 1000:.1f} KB with full-length links, " \
           f"budget {settings.size_budget_kb} KB"
    if edition.shrunk:
        which = "the last story was" if edition.shrunk == 1 else \
            f"the last {edition.shrunk} stories were"
        click.echo(f"{size}: {which} shrunk to title, facts and a link to the web version "
                   "(the text part has every story in full)")
    else:
        click.echo(f"{size}: every story in full")
