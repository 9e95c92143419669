"""GET/POST /subscribe and GET /confirm/<token>: double opt-in."""

from __future__ import annotations

import logging

from flask import Blueprint, render_template, request

from newsletter.errors import NewsletterError, SubscriberError
from subscribers import signup
from subscribers.web.state import db, state

bp = Blueprint("signup", __name__)
log = logging.getLogger(__name__)


@bp.route("/subscribe", methods=["GET", "POST"])
def subscribe() -> str | tuple[str, int]:
    if request.method != "POST":  # GET and HEAD (Flask routes HEAD here too)
        return render_template("subscribe.html")
    email, name = request.form.get("email", ""), request.form.get("name", "")
    app = state()
    if not app.signups_per_client.allow(f"ip:{request.remote_addr}"):
        return render_template("subscribe.html", email=email, name=name,
                               error="Too many sign-ups from your network: please try again "
                                     "in an hour."), 429
    session = db()
    try:
        person = signup.request(session, email, name, ip=request.remote_addr)
    except SubscriberError as err:
        return render_template("subscribe.html", email=email, name=name, error=str(err)), 400
    session.commit()
    # Whatever happened above, the page says the same (no address enumeration); the
    # per-address limit keeps the form from being used to flood someone's inbox.
    if person is not None and app.mails_per_address.allow(f"to:{person.email_key}"):
        _send_confirmation(person)
    return render_template("message.html", title="Check your inbox",
                           text="If the address can receive our emails, a confirmation link "
                                "is on its way. Follow it within 7 days to start getting "
                                "the newsletter.")


def _send_confirmation(person) -> None:
    app = state()
    try:
        result = app.confirmations.send(app.transport(app.settings), person)
    except NewsletterError as err:  # the transport is down: the person may simply retry
        log.error("confirmation email to subscriber %s not sent: %s", person.id, err)
        return
    if not result.delivered:
        log.warning("confirmation email to subscriber %s %s: %s", person.id, result.status,
                    result.error)


@bp.get("/confirm/<token>")
def confirm(token: str) -> str:
    session = db()
    person = signup.confirm(session, state().links, token, ip=request.remote_addr)
    session.commit()
    return render_template("message.html", title="You are subscribed",
                           text=f"Thank you: {state().settings.list_name} will reach "
                                f"{person.email} from the next edition on.")
