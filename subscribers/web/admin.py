"""/admin: editors preview the day's edition, check its size, test-send it, watch sends
(the day's stories themselves: subscribers/web/desk.py).

Closed (403) until NEWSLETTER_ADMIN_PASSWORD is set; then behind a login whose session
cookie holds an HMAC of the password, so changing the password logs everyone out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re

from flask import Blueprint, abort, flash, redirect, render_template, request, session, url_for
from sqlalchemy import select
from sqlalchemy.orm import defer
from werkzeug.security import check_password_hash
from werkzeug.wrappers import Response

from newsletter.delivery.tally import edition_counts
from newsletter.errors import NewsletterError
from newsletter.mail.links import slot_values
from newsletter.render.edition import render_edition
from newsletter.render.size_budget import KB
from newsletter.store.models import Edition
from newsletter.stories.imports import load_day
from subscribers.web.state import read_db, state

bp = Blueprint("admin", __name__, url_prefix="/admin")
GMAIL_CLIP = 102 * KB  # Gmail hides everything past ~102 KB of HTML, footer included


def _fingerprint(password: str) -> str:
    key = state().settings.secret_key or ""
    return hmac.new(key.encode(), password.encode(), hashlib.sha256).hexdigest()


@bp.before_request
def guard() -> Response | None:
    password = state().settings.admin_password
    if not password:
        abort(403, "The editors' pages are closed: set NEWSLETTER_ADMIN_PASSWORD to open them.")
    if request.endpoint != "admin.login" and not hmac.compare_digest(
            session.get("admin", ""), _fingerprint(password)):
        return redirect(url_for("admin.login"))
    return None


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    if request.method != "POST":  # GET and HEAD (Flask routes HEAD here too)
        return render_template("admin/login.html")
    given = request.form.get("password", "")
    # A salted scrypt hash made at start-up: constant-time, and slow for a guesser too.
    if not check_password_hash(state().admin_hash or "", given):
        return render_template("admin/login.html", error="That is not the password."), 403
    session.clear()
    session["admin"] = _fingerprint(given)
    return redirect(url_for("admin.index"))


@bp.post("/logout")
def logout() -> Response:
    session.clear()
    return redirect(url_for("admin.login"))


@bp.get("/")
def index() -> str:
    day = day_from(request.args.get("date"))
    return render_template("admin/index.html", **preview(day), recent=_recent())


def preview(day: dt.date) -> dict[str, object]:
    """What admin/_preview.html shows: the day's edition rendered fresh from its stories,
    its size against the budget, and the test-send form's default recipients."""
    settings = state().settings
    stories = load_day(read_db(), day)
    edition = render_edition(stories, date=day, settings=settings) if stories else None
    html = edition.personalise(slot_values(settings.base_url, day))[0] if edition else None
    return {"day": day, "edition": edition, "html": html, "clip": GMAIL_CLIP,
            "budget": settings.size_budget_kb * KB,
            "recipients": ", ".join(settings.test_recipient_list)}


@bp.post("/test-send")
def test_send() -> Response:
    """The same as `newsletter test-send`: subject prefixed [TEST], no delivery records."""
    from newsletter.delivery.testsend import test_send as send

    day = day_from(request.form.get("date"))
    addresses = [a for a in re.split(r"[\s,;]+", request.form.get("to", "")) if a]
    try:
        results = send(state().read_sessions, state().settings, day, addresses)
    except NewsletterError as err:
        flash(f"Test send failed: {err}", "error")
    else:
        for result in results:
            flash(f"{result.recipient.email}: {result.status}"
                  + (f" ({result.error})" if result.error else ""),
                  "ok" if result.delivered else "error")
    # Back to the page the form was on: the editors' front page or the day's stories.
    back = "desk.day" if request.form.get("back") == "stories" else "admin.index"
    return redirect(url_for(back, date=day.isoformat()))


def _recent(limit: int = 10) -> list[tuple[Edition, dict[str, int]]]:
    # Without their content: a frozen edition's JSON is ~200 KB, and the list shows none.
    editions = read_db().scalars(select(Edition).options(defer(Edition.content))
                                 .order_by(Edition.date.desc()).limit(limit))
    return [(edition, edition_counts(read_db().connection(), edition))
            for edition in editions]


def day_from(value: str | None) -> dt.date:
    if not value:
        return state().settings.today()
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        abort(400, f"{value!r} is not a date in the form YYYY-MM-DD")
