"""The `newsletter` command line: a face over the services below it.

Settings are read once here and passed down; each command owns its transaction. Errors a
person can fix (NewsletterError) print as one line on stderr with exit status 1.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import logging
import signal
import sys
from collections.abc import Callable, Iterator

import click
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from newsletter.errors import NewsletterError
from newsletter.settings import Settings, load_settings
from newsletter.store.db import make_engine, reader, session_factory, upgrade


class AppContext:
    """Settings and database, made on first use so `--help` needs neither."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._engine: Engine | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
            upgrade(self._engine)  # every command creates or upgrades the schema on first use
        return self._engine

    @functools.cached_property
    def sessions(self) -> sessionmaker[Session]:
        return session_factory(self.engine)

    @functools.cached_property
    def read_sessions(self) -> sessionmaker[Session]:
        """Sessions for commands that only read: no write lock on SQLite (newsletter.store.db)."""
        return session_factory(reader(self.engine))

    def override(self, **values: object) -> Settings:
        """The settings with `values` in place, for the rest of the command (the demo)."""
        self._settings = load_settings(**values)
        return self._settings

    def day(self, date: dt.date | None) -> dt.date:
        return date or self.settings.today()


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def warn_without_postal_address(settings: Settings) -> None:
    """Once per command that renders or sends the edition: bulk mail must show the sender's
    postal address (CAN-SPAM, 15 U.S.C. 7704(a)(5)(A)(iii)), and the footer prints it only
    when it is set. A warning, not an error: a local try-out needs none."""
    if not settings.postal_address:
        click.echo("warning: NEWSLETTER_POSTAL_ADDRESS is not set, so the footer has no postal "
                   "address; the law for bulk mail (CAN-SPAM) requires one", err=True)


@contextlib.contextmanager
def on_signals(handler: Callable[[], None]) -> Iterator[None]:
    """SIGTERM (systemd, process managers) and SIGINT (Ctrl-C) call `handler`."""
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    for sig in previous:
        signal.signal(sig, lambda *_: handler())
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


class DateType(click.ParamType):
    name = "YYYY-MM-DD"

    def convert(self, value, param, ctx):
        if isinstance(value, dt.date):
            return value
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            self.fail(f"{value!r} is not a valid date (YYYY-MM-DD)", param, ctx)


DATE = DateType()


class Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NewsletterError as err:
            raise click.ClickException(str(err)) from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what happens, step by step.")
@click.version_option(package_name="daily-spin-newsletter")
def cli(verbose: bool) -> None:
    """The Daily Spin: import stories, manage subscribers, render and send the daily email.

    Settings come from NEWSLETTER_* environment variables or a .env file (see .env.example).
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")


@cli.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: AppContext) -> None:
    """Create or upgrade the schema to the newest version."""
    app.engine  # noqa: B018 - opening it upgrades
    click.echo(f"database is up to date: {app.engine.url.render_as_string()}")


def main() -> None:
    cli(prog_name="newsletter")


# Command modules register themselves on `cli`; imported last so they can import from here.
from newsletter.cli import (  # noqa: E402, F401
    bounces,
    demo,
    outbox,
    prune,
    rendering,
    schedule,
    sending,
    stories,
    subscribers,
    testsend,
    web,
)
