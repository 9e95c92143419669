"""`newsletter subscribers ...`: operators add, import, export and remove people."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from newsletter.cli import AppContext, cli, pass_app

# Subscriber statuses (newsletter.store.models.SubscriberStatus, checked by a test): spelt
# out so `--help` needs no SQLAlchemy.
STATUSES = ("pending", "confirmed", "unsubscribed", "bounced", "complained")


@cli.group()
def subscribers() -> None:
    """Add, import, export, list and remove subscribers."""


@subscribers.command("add")
@click.argument("email")
@click.option("--name", help="The person's name, as they wrote it.")
@click.option("--confirmed", is_flag=True,
              help="They already confirmed elsewhere (default: pending until they confirm).")
@pass_app
def add(app: AppContext, email: str, name: str | None, confirmed: bool) -> None:
    """Add one subscriber."""
    from newsletter.store.db import transaction
    from subscribers import service

    with transaction(app.sessions) as session:
        person = service.add(session, email, name, confirmed=confirmed, source="cli")
        click.echo(f"added {person.email} ({person.status})")


@subscribers.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--confirmed", is_flag=True, help="Everyone in the file already confirmed.")
@pass_app
def import_(app: AppContext, file: Path, confirmed: bool) -> None:
    """Import a CSV with columns email,name (a header row is optional).

    Valid rows are added; every refused row is reported with its number and reason.
    """
    from newsletter.store.db import transaction
    from subscribers.csv_io import decode_csv
    from subscribers.importing import import_csv

    text = decode_csv(file.read_bytes(), str(file))
    with transaction(app.sessions) as session:
        report = import_csv(session, text, confirmed=confirmed)
    for row in report.rejected:
        click.echo(f"{file}: row {row.row}: {row.value!r}: {row.reason}", err=True)
    click.echo(f"imported {report.added}, refused {len(report.rejected)}")


@subscribers.command("unsuppress")
@click.argument("email")
@pass_app
def unsuppress(app: AppContext, email: str) -> None:
    """Lift a bounce or complaint suppression (after a relay or provider problem was
    fixed): the address may be mailed again, and the subscriber is confirmed again.

    Someone who unsubscribed or asked to be erased can only come back themselves.
    The change is logged with who made it and when.
    """
    import getpass

    from newsletter.store import suppression
    from newsletter.store.db import transaction
    from subscribers import service

    key = service.parse_address(email).key
    with transaction(app.sessions) as session:
        change = suppression.unsuppress(session, key, by=f"cli:{getpass.getuser()}")
    click.echo(f"lifted the {change.reason} suppression of {key} ({change.detail or 'no detail'})")


@subscribers.command("export")
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_app
def export(app: AppContext, file: Path | None) -> None:
    """Write every subscriber with status as CSV (to FILE, or standard output)."""
    from subscribers.csv_io import export_csv

    with app.read_sessions() as session:
        if file is None:
            export_csv(session, sys.stdout)
            return
        tmp = file.with_name(file.name + ".part")
        with tmp.open("w", encoding="utf-8", newline="") as out:
            count = export_csv(session, out)
        tmp.replace(file)  # never leave half a file under the real name
    click.echo(f"exported {count} subscribers to {file}", err=True)


@subscribers.command("list")
@click.option("--status", type=click.Choice(STATUSES),
              help="Only people with this status.")
@pass_app
def list_(app: AppContext, status: str | None) -> None:
    """One line per subscriber: address, status, name."""
    from sqlalchemy import func, select

    from newsletter.store.models import Subscriber
    from subscribers.csv_io import iter_subscribers

    with app.read_sessions() as session:
        for person in iter_subscribers(session, status):
            click.echo(f"{person.email}\t{person.status}\t{person.name or ''}")
        counts = session.execute(select(Subscriber.status, func.count())
                                 .group_by(Subscriber.status)).all()
    click.echo(", ".join(f"{n} {s}" for s, n in sorted(counts)) or "no subscribers", err=True)


@subscribers.command("remove")
@click.argument("email")
@pass_app
def remove(app: AppContext, email: str) -> None:
    """Erase a person; their address stays suppressed so they are never mailed again."""
    from newsletter.store.db import transaction
    from subscribers import service

    with transaction(app.sessions) as session:
        address = service.remove(session, email)
    click.echo(f"removed {address.email}; the address is suppressed")
