"""GET /archive and /archive/<date>: sent editions as web pages ("view in browser").

A page is the stored edition (frozen at its first send) filled with values that belong to
nobody: no personal token, no address, so a shared link unsubscribes no one.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, abort, render_template
from sqlalchemy import select

from newsletter.delivery.edition import web_page
from newsletter.mail.links import slot_values
from newsletter.store.models import Edition
from subscribers.web.state import db, state

bp = Blueprint("archive", __name__)
PUBLIC = "public, max-age=300"  # the same for everyone: caches may keep it a while


@bp.get("/archive")
def index() -> Response:
    editions = db().execute(select(Edition.date, Edition.subject)
                            .order_by(Edition.date.desc()).limit(1000)).all()
    response = Response(render_template("archive.html", editions=editions))
    response.headers["Cache-Control"] = PUBLIC
    return response


@bp.get("/archive/<date>")
def edition(date: str) -> Response:
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        abort(404)
    row = db().scalar(select(Edition).where(Edition.date == day))
    if row is None:
        abort(404, f"There is no edition for {date}.")
    html = web_page(row).fill_html(
        slot_values(state().settings.base_url, day, email="", token=None))
    return Response(html, headers={"Cache-Control": PUBLIC})
