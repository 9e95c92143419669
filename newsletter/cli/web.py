"""`newsletter serve`: the web app (subscribers.web) on one port, and a thread draining the
mail queue (the embedded default: one process does it all).

Flask's threaded server is enough for a small list and for trying it out; in production run
it under gunicorn, e.g. `gunicorn -w 4 -b 127.0.0.1:8000 'subscribers.web:create_app()'`,
behind a TLS proxy (RFC 8058 wants an HTTPS one-click URL); then the daemon (`newsletter
schedule`) or `newsletter outbox drain` from cron sends the queued emails.
"""

from __future__ import annotations

import threading

import click

from newsletter.cli import AppContext, cli, pass_app

DRAIN_EVERY = 2.0  # seconds between looks at the mail queue: a confirmation goes out quickly


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@pass_app
def serve(app: AppContext, host: str, port: int) -> None:
    """Serve the web app: sign-up, unsubscribe, preferences, archive, editors, webhooks."""
    from newsletter.delivery.mail_drain import MailDrain
    from subscribers.web import create_app  # Flask only for this command

    app.engine  # noqa: B018 - this one process may create or upgrade the schema; workers never
    web = create_app(app.settings)
    stop = threading.Event()
    MailDrain(app.settings, app.engine).start(stop, DRAIN_EVERY)
    click.echo(f"serving {app.settings.list_name} on http://{host}:{port} "
               f"(links in emails point at {app.settings.base_url}; sending queued "
               "confirmations from this process)", err=True)
    try:
        web.run(host=host, port=port, threaded=True, debug=False, load_dotenv=False)
    finally:
        stop.set()
