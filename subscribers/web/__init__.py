"""The web app: sign-up, confirm, unsubscribe, preferences, archive, editors (and their
stories desk), webhooks.

    gunicorn 'subscribers.web:create_app()'      # or: newsletter serve

Settings are read once here and kept on the app; one blueprint per area (Flask's tutorial
layout). Flask-WTF guards every form with a CSRF token, except the two posts that cannot
carry one: RFC 8058 one-click unsubscribe (no cookies) and the providers' webhooks (signed).
"""

from __future__ import annotations

from flask import Flask, Response, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from newsletter.db import make_engine, session_factory, upgrade
from newsletter.links import BadToken, Links
from newsletter.settings import Settings, load_settings
from newsletter.templates import templates_dir
from newsletter.transports import get_transport
from subscribers.signup import Confirmations, RequestLimiter
from subscribers.web import admin, archive, desk, manage, signup, webhooks
from subscribers.web.state import WebState, close_db

# Tokens ride in URLs: never leak them to another site through Referer (no-referrer). Pages
# run no script; emails in the archive load images from story sites.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
       "form-action 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'")
HOUR = 3600.0


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    settings.require_secret()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    links = Links(settings)
    app = Flask(__name__, template_folder=str(templates_dir() / "web"), static_folder=None)
    app.config.update(
        SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=8 * 1024 * 1024,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.base_url.startswith(
            "https://"))
    app.extensions["newsletter"] = WebState(
        settings=settings, sessions=session_factory(engine), links=links,
        confirmations=Confirmations(settings, links), transport=get_transport,
        signups_per_client=RequestLimiter(10, HOUR), mails_per_address=RequestLimiter(3, 24 * HOUR),
        logins_per_client=RequestLimiter(10, HOUR / 4))
    if settings.trusted_proxies:
        # Behind a reverse proxy the client's address is in X-Forwarded-For (rate limits).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,
                                x_proto=settings.trusted_proxies)
    csrf = CSRFProtect(app)
    csrf.exempt(webhooks.bp)
    csrf.exempt(manage.unsubscribe)
    for blueprint in (signup.bp, manage.bp, archive.bp, admin.bp, desk.bp, webhooks.bp):
        app.register_blueprint(blueprint)
    app.teardown_appcontext(close_db)
    app.after_request(_security_headers)
    app.register_error_handler(BadToken, _bad_token)
    app.register_error_handler(CSRFError, _csrf_error)
    app.register_error_handler(HTTPException, _http_error)
    app.add_url_rule("/", "home", lambda: render_template("home.html"))
    return app


def _security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cache-Control", "no-store")  # personal pages: keep out of caches
    return response


def _bad_token(error: BadToken) -> tuple[str, int]:
    return render_template("message.html", title="This link does not work",
                           text=str(error)), 400


def _csrf_error(error: CSRFError) -> tuple[str, int]:
    return render_template("message.html", title="Please try again",
                           text="The form had expired or was not ours: reload the page and "
                                "send it again."), 400


def _http_error(error: HTTPException) -> Response:
    response = error.get_response()  # keeps headers such as Allow on a 405
    response.set_data(render_template("message.html", title=error.name,
                                      text=error.description or ""))
    response.content_type = "text/html; charset=utf-8"
    return response
