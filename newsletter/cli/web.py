"""`newsletter serve`: the web app (subscribers.web) on one port.

Flask's threaded server is enough for a small list and for trying it out; in production run
it under gunicorn, e.g. `gunicorn -w 4 -b 127.0.0.1:8000 'subscribers.web:create_app()'`,
behind a TLS proxy (RFC 8058 wants an HTTPS one-click URL).
"""

from __future__ import annotations

import click

from newsletter.cli import AppContext, cli, pass_app


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535),
              help="Port to listen on.")
@pass_app
def serve(app: AppContext, host: str, port: int) -> None:
    """Serve the web app: sign-up, unsubscribe, preferences, archive, editors, webhooks."""
    from subscribers.web import create_app  # Flask only for this command

    app.engine  # noqa: B018 - this one process may create or upgrade the schema; workers never
    web = create_app(app.settings)
    click.echo(f"serving {app.settings.list_name} on http://{host}:{port} "
               f"(links in emails point at {app.settings.base_url})", err=True)
    web.run(host=host, port=port, threaded=True, debug=False, load_dotenv=False)
