"""`newsletter demo`: the whole daily job on embedded defaults, in the current folder."""

from __future__ import annotations

import secrets
from pathlib import Path

import click

from newsletter.cli import AppContext, cli, pass_app

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SAMPLE_PEOPLE = [
    ("ada@example.com", "Ada Lovelace"),
    ("grace@example.org", "Grace Hopper"),
    ("zoe@bücher.example", "Zoë Ångström"),
    ("kenji@example.jp", "山田 健二"),
    ("amira@example.com", "أميرة"),
]


@cli.command()
@pass_app
def demo(app: AppContext) -> None:
    """Run the whole daily job here on embedded defaults.

    Creates the SQLite database, imports the sample stories for today, adds a few sample
    subscribers, renders the edition, sends it to the file outbox, and prints where the
    emails and an HTML preview are. Safe to run again: nothing is sent twice.
    """
    from newsletter.cli.sending import send_edition
    from newsletter.store.db import transaction
    from newsletter.stories.imports import import_stories, load_day, read_stories
    from subscribers import service

    # The demo always mails to files, whatever .env says.
    settings = app.override(transport="outbox", secret_key=_secret(app))
    day = settings.today()
    with transaction(app.sessions) as session:
        if not load_day(session, day):
            report = import_stories(session, read_stories([SAMPLES]), day)
            click.echo(f"imported {len(report.added)} sample stories for {day}")
        for email, name in SAMPLE_PEOPLE:
            if service.find(session, email) is None:
                service.add(session, email, name, confirmed=True, source="demo")
    report = send_edition(app, day)
    click.echo(report.summary)
    preview = _write_preview(app, day)
    outbox = settings.outbox_dir.resolve()
    click.echo(f"emails (.eml, one per subscriber): {outbox}")
    click.echo(f"HTML preview: {preview / 'edition.html'}  (text: {preview / 'edition.txt'})")
    click.echo("next: `newsletter serve` for the sign-up and archive pages, "
               "`newsletter --help` for the rest")


def _secret(app: AppContext) -> str:
    """Links need a signing key; the demo makes one and keeps it in .env for next time."""
    key = app.settings.secret_key
    if key:
        return key
    key = secrets.token_urlsafe(32)
    env = Path(".env")
    if not env.exists():
        env.write_text("# Made by `newsletter demo`; see .env.example for every setting.\n"
                       f"NEWSLETTER_SECRET_KEY={key}\n", encoding="utf-8")
        click.echo("made a secret key for the links and saved it in .env")
    return key


def _write_preview(app: AppContext, day) -> Path:
    from newsletter.delivery.edition import find_edition, rendered
    from newsletter.mail.links import TEST_SUBSCRIBER_ID, Links

    with app.read_sessions() as session:
        content = rendered(find_edition(session, day))
    values = Links(app.settings).values(TEST_SUBSCRIBER_ID, "reader@example.com", day)
    folder = Path("preview")
    folder.mkdir(exist_ok=True)
    (folder / "edition.html").write_text(content.html.fill_html(values), encoding="utf-8")
    (folder / "edition.txt").write_text(content.text.fill(values), encoding="utf-8")
    return folder.resolve()
