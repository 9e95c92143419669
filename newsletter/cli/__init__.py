"""The `newsletter` command line: a face over the services below it.

Settings are read once here and passed down; each command owns its transaction. Errors a
person can fix (NewsletterError) print as one line on stderr with exit status 1.

Starting fast matters (a monitoring check may run `status` or `health` every minute): this
module and the command modules import only click at the top; SQLAlchemy, Alembic,
pydantic, Jinja2, MJML, premailer, Flask and requests are imported inside the commands
that use them (tests/test_cli_startup.py keeps `--help` free of them). `status` and
`health` read through SQLAlchemy Core (AppContext.reading), never loading the ORM.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import logging
import os
import signal
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import click

from newsletter import __version__
from newsletter.errors import NewsletterError
from newsletter.ops.logs import configure as configure_logs
from newsletter.ops.logs import json_lines

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine
    from sqlalchemy.orm import Session, sessionmaker

    from newsletter.settings import Settings


class AppContext:
    """Settings and database, made on first use so `--help` needs neither."""

    def __init__(self) -> None:
        self._settings: Settings | None = None
        self._engine: Engine | None = None
        self.verbose = 0

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._load()
        return self._settings

    @property
    def engine(self) -> Engine:
        """The database, its schema created or upgraded on first use (a no-op read of the
        revision when it is current; newsletter.store.db.ensure_schema)."""
        if self._engine is None:
            from newsletter.store.db import ensure_schema, make_engine

            self._engine = make_engine(self.settings.database_url)
            ensure_schema(self._engine)
            ctx = click.get_current_context(silent=True)
            if ctx is not None:  # its connections closed when the command ends (see main)
                ctx.call_on_close(self._engine.dispose)
        return self._engine

    @functools.cached_property
    def sessions(self) -> sessionmaker[Session]:
        from newsletter.store.db import session_factory

        return session_factory(self.engine)

    @functools.cached_property
    def read_sessions(self) -> sessionmaker[Session]:
        """Sessions for commands that only read: no write lock on SQLite (newsletter.store.db)."""
        from newsletter.store.db import reader, session_factory

        return session_factory(reader(self.engine))

    @contextlib.contextmanager
    def reading(self) -> Iterator[Connection]:
        """A connection for commands that only read, without the ORM (`status`): no write
        lock on SQLite (one WAL snapshot there); on PostgreSQL each statement sees what was
        committed when it began (READ COMMITTED)."""
        from newsletter.store.db import reader

        with reader(self.engine).connect() as conn:
            yield conn

    def override(self, **values: object) -> Settings:
        """The settings with `values` in place, for the rest of the command (the demo)."""
        return self._load(**values)

    def _load(self, **values: object) -> Settings:
        from newsletter.settings import load_settings

        self._settings = load_settings(**values)
        # .env may name another log format than the environment did at start-up.
        configure_logs(self.verbose, self._settings.log_format, debug=self.verbose > 1)
        return self._settings

    def day(self, date: dt.date | None) -> dt.date:
        return date or self.settings.today()


pass_app = click.make_pass_decorator(AppContext, ensure=True)


def warn_without_postal_address(settings: Settings) -> None:
    """Once per command that renders or sends the edition: bulk mail must show the sender's
    postal address (CAN-SPAM, 15 U.S.C. 7704(a)(5)(A)(iii)), and the footer prints it only
    when it is set. A warning, not an error: a local try-out needs none."""
    if not settings.postal_address:  # a log line: one JSON object under NEWSLETTER_LOG_FORMAT=json
        logging.getLogger("newsletter.cli").warning(
            "NEWSLETTER_POSTAL_ADDRESS is not set, so the footer has no postal address; the "
            "law for bulk mail (CAN-SPAM) requires one")


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
        except (NewsletterError, OSError) as err:
            if isinstance(err, OSError) and not err.filename:
                raise  # not a path the person gave: a bug or the network, keep the traceback
            message = (f"{err.filename}: {err.strerror}" if isinstance(err, OSError)
                       else str(err))
            if json_lines():  # NEWSLETTER_LOG_FORMAT=json: every stderr line an object
                logging.getLogger("newsletter.cli").error("%s", message)
                ctx.exit(1)
            raise click.ClickException(message) from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", count=True,
              help="Log each step on stderr (-vv: also each address, at debug level).")
@click.version_option(__version__, package_name="daily-spin-newsletter")
@click.pass_context
def cli(ctx: click.Context, verbose: int) -> None:
    """The Daily Spin: import stories, manage subscribers, render and send the daily email.

    Settings come from NEWSLETTER_* environment variables or a .env file (see .env.example).
    Logs go to stderr (NEWSLETTER_LOG_FORMAT=text or json); results to stdout.
    """
    ctx.ensure_object(AppContext).verbose = verbose
    # Configured at once from the environment, again once settings (and .env) are read.
    configure_logs(verbose, os.environ.get("NEWSLETTER_LOG_FORMAT", "text"), debug=verbose > 1)


@cli.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
@pass_app
def db_upgrade(app: AppContext) -> None:
    """Create or upgrade the schema to the newest version: the deploy step.

    Safe to run from several machines at once: on PostgreSQL an advisory lock makes the
    others wait, then find nothing to do. The web app never upgrades by itself.
    """
    app.engine  # noqa: B018 - opening it upgrades
    click.echo(f"database is up to date: {app.engine.url.render_as_string()}")


def main() -> None:
    try:
        cli(prog_name="newsletter")
    finally:
        # On the way out Python's last garbage collections walk every object the imports
        # made (SQLAlchemy, pydantic): ~0.2 s of every `status` here, measured with py-spy.
        # Frozen objects are not walked; the process ends and the OS takes the memory back.
        # Commands close what they opened themselves (the engine: AppContext.engine), so
        # nothing waits on a collection to be closed.
        gc.freeze()


# Command modules register themselves on `cli`; imported last so they can import from here.
from newsletter.cli import (  # noqa: E402, F401
    bounces,
    demo,
    health,
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
