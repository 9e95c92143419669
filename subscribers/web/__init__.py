"""The web app: sign-up, confirm, unsubscribe, preferences, archive, editors, webhooks.

    gunicorn 'subscribers.web:create_app()'      # or: newsletter serve

Settings are read once here and kept on the app; one blueprint per area (Flask's tutorial
layout). Flask-WTF guards every form with a CSRF token, except the two posts that cannot
carry one: RFC 8058 one-click unsubscribe (no cookies) and the providers' webhooks (signed).
"""

from __future__ import annotations

import logging

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError, CSRFProtect
from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.security import generate_password_hash

from newsletter.mail.links import BadToken, ExpiredLink, Links
from newsletter.ops import metrics
from newsletter.render.templates import templates_dir
from newsletter.settings import Settings, load_settings
from newsletter.store.db import make_engine, reader, schema_state, session_factory
from subscribers.web import admin, desk, limits, probes, responses, webhooks
from subscribers.web.readers import archive, manage, signup
from subscribers.web.state import WebState, close_db

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    settings = settings or load_settings()
    settings.require_secret()
    engine = make_engine(settings.database_url)
    _check_schema(engine)
    links = Links(settings)
    app = Flask(__name__, template_folder=str(templates_dir() / "web"), static_folder=None)
    app.config.update(
        SECRET_KEY=settings.secret_key, MAX_CONTENT_LENGTH=8 * 1024 * 1024,
        SESSION_COOKIE_SAMESITE="Lax", SESSION_COOKIE_SECURE=settings.base_url.startswith(
            "https://"))
    app.extensions["newsletter"] = WebState(
        settings=settings, sessions=session_factory(engine),
        read_sessions=session_factory(reader(engine)), links=links,
        admin_hash=generate_password_hash(settings.admin_password)
        if settings.admin_password else None)
    if settings.trusted_proxies:
        # Behind a reverse proxy the client's address is in X-Forwarded-For (rate limits).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings.trusted_proxies,
                                x_proto=settings.trusted_proxies)
    csrf = CSRFProtect(app)
    csrf.exempt(webhooks.bp)
    csrf.exempt(manage.unsubscribe)
    app.extensions[probes.METRICS] = metrics.registry(engine, runs=False)
    for blueprint in (signup.bp, manage.bp, archive.bp, admin.bp, desk.bp, webhooks.bp,
                      probes.bp):
        app.register_blueprint(blueprint)
    limiter = limits.limiter(app, settings)
    limits.limit(app, limiter, "signup.subscribe", settings.signup_rate_limit,
                 "Too many sign-ups from your network: please try again later.")
    limits.limit(app, limiter, "manage.renew", limits.LINKS_LIMIT,
                 "Too many links asked for from your network: please try again later.")
    limits.limit(app, limiter, "admin.login", limits.LOGIN_LIMIT, "Too many tries: wait a while.")
    app.teardown_appcontext(close_db)
    app.after_request(responses.security_headers)
    app.register_error_handler(ExpiredLink, responses.expired_link)
    app.register_error_handler(BadToken, responses.bad_token)
    app.register_error_handler(CSRFError, responses.csrf_error)
    app.register_error_handler(HTTPException, responses.http_error)
    app.add_url_rule("/", "home", lambda: render_template("home.html"))
    return app


def _check_schema(engine) -> None:
    """Workers never migrate (several would race at boot): `newsletter db upgrade` is the
    deploy step. A schema that is behind, or a database that does not answer yet, is
    logged here and reported by /readyz until it is fixed."""
    try:
        with reader(engine).connect() as conn:
            schema = schema_state(conn)
    except SQLAlchemyError as err:
        log.warning("database not reachable at start-up (see /readyz): %s",
                    type(err).__name__)
        return
    if not schema.up_to_date:
        log.warning("%s: run `newsletter db upgrade`; /readyz answers 503 until then",
                    schema.describe())
