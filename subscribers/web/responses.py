"""What every answer of the web app shares: security headers, and error pages in the
site's own template (a bad token, an expired form, any HTTP error)."""

from __future__ import annotations

from flask import Response, render_template
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from newsletter.mail.links import BadToken, ExpiredLink

# Tokens ride in URLs: never leak them to another site through Referer (no-referrer). Pages
# run no script; emails in the archive load images from story sites.
CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' https: data:; "
       "form-action 'self'; frame-src 'self'; frame-ancestors 'self'; base-uri 'none'")

def security_headers(response: Response) -> Response:
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("X-Frame-Options", "SAMEORIGIN")
    headers.setdefault("Referrer-Policy", "no-referrer")
    headers.setdefault("Cache-Control", "no-store")  # personal pages: keep out of caches
    return response


def bad_token(error: BadToken) -> tuple[str, int]:
    return render_template("message.html", title="This link does not work",
                           text=str(error)), 400


def expired_link(error: ExpiredLink) -> tuple[str, int]:
    # 410 Gone: the link was good once; the page offers a fresh one.
    return render_template("expired.html", text=str(error).capitalize(), token=error.token), 410


def csrf_error(error: CSRFError) -> tuple[str, int]:
    return render_template("message.html", title="Please try again",
                           text="The form had expired or was not ours: reload the page and "
                                "send it again."), 400


def http_error(error: HTTPException) -> Response:
    response = error.get_response()  # keeps headers such as Allow on a 405
    response.set_data(render_template("message.html", title=error.name,
                                      text=error.description or ""))
    response.content_type = "text/html; charset=utf-8"
    return response
