"""GET/POST /subscribe and GET/POST /confirm/<token>: double opt-in.

A sign-up answers at once with the same page whatever the address: the confirmation email
is queued in the request's transaction and sent by a drainer (subscribers.signup). The
confirmation link's GET shows one button and changes nothing (link scanners fetch every
link in a message); only its POST subscribes.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from newsletter.errors import SubscriberError
from newsletter.store.models import SubscriberStatus
from subscribers import signup
from subscribers.service import MAX_EMAIL, MAX_NAME
from subscribers.web.state import db, state

bp = Blueprint("signup", __name__)


@bp.route("/subscribe", methods=["GET", "POST"])
def subscribe() -> str | tuple[str, int]:
    """POSTs are rate-limited per client (NEWSLETTER_SIGNUP_RATE_LIMIT, in create_app)."""
    if request.method != "POST":  # GET and HEAD (Flask routes HEAD here too)
        return render_template("subscribe.html")
    email, name = request.form.get("email", ""), request.form.get("name", "")
    session = db()
    try:
        signup.request(session, email, name, ip=request.remote_addr)
    except SubscriberError as err:
        # Only what fits the form goes back into it: nothing is echoed at length.
        return render_template("subscribe.html", error=str(err),
                               email=email if len(email) <= MAX_EMAIL else "",
                               name=name if len(name) <= MAX_NAME else ""), 400
    session.commit()
    return render_template("message.html", title="Check your inbox",
                           text="If the address can receive our emails, a confirmation link "
                                "is on its way. Follow it within 7 days to start getting "
                                "the newsletter.")


@bp.route("/confirm/<token>", methods=["GET", "POST"])
def confirm(token: str) -> str | tuple[str, int]:
    session, app = db(), state()
    if request.method != "POST":  # GET and HEAD: show the button, change nothing
        person = signup.pending_confirmation(session, app.links, token)
        if person.status == SubscriberStatus.CONFIRMED:
            return render_template("message.html", title="You are subscribed",
                                   text="This address is already confirmed: nothing to do.")
        return render_template("confirm.html", person=person, token=token)
    try:
        person = signup.confirm(session, app.links, token, ip=request.remote_addr)
    except SubscriberError as err:
        return render_template("message.html", title="We cannot subscribe this address",
                               text=f"Sorry: {err}. If that report was a mistake, reply to "
                                    "any of our emails and we will sort it out."), 409
    session.commit()
    return render_template("message.html", title="You are subscribed",
                           text=f"Thank you: {app.settings.list_name} will reach "
                                f"{person.email} from the next edition on.")
