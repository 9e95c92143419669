"""Rate limits on the posts a stranger can repeat: sign-up (NEWSLETTER_SIGNUP_RATE_LIMIT,
per client address), asking for a fresh link, and admin password guesses.

Flask-Limiter counts in Redis when NEWSLETTER_REDIS_URL is set, so every gunicorn worker and
every host shares one count (a moving window, checked atomically by a Redis script). Without
it the counts live in each process's memory: exact under `newsletter serve`, N times looser
with N workers, which start-up says. If Redis goes away, each process falls back to its
memory until it is back, rather than refusing everyone or letting everyone through.
Behind a proxy, NEWSLETTER_TRUSTED_PROXIES makes the client address the real one (ProxyFix).
"""

from __future__ import annotations

import hashlib
import logging
import os

from flask import Flask
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address

from newsletter.settings import Settings

log = logging.getLogger(__name__)
LINKS_LIMIT = "5/hour"          # fresh preferences links asked for, per client
LOGIN_LIMIT = "10 per 15 minutes"  # admin password guesses, per client


def limiter(app: Flask, settings: Settings) -> Limiter:
    """A limiter for `app` (one per app: Flask-Limiter keeps its storage per instance)."""
    # One Redis may serve several lists (and test runs): each counts under its own prefix.
    prefix = "newsletter-" + hashlib.sha256(settings.require_secret().encode()).hexdigest()[:12]
    if not settings.redis_url and "gunicorn" in os.environ.get("SERVER_SOFTWARE", ""):
        log.warning("rate limits are counted in each worker's memory, so with N gunicorn "
                    "workers a client gets N times NEWSLETTER_SIGNUP_RATE_LIMIT: set "
                    "NEWSLETTER_REDIS_URL to share them")
    return Limiter(get_remote_address, app=app, storage_uri=settings.redis_url or "memory://",
                   strategy="moving-window", key_prefix=prefix, headers_enabled=True,
                   in_memory_fallback_enabled=True)


def limit(app: Flask, limiter: Limiter, endpoint: str, value: str, message: str) -> None:
    """Limit the POSTs to one endpoint; a refused one answers 429 with `message`."""
    app.view_functions[endpoint] = limiter.limit(value, methods=["POST"], error_message=message)(
        app.view_functions[endpoint])
