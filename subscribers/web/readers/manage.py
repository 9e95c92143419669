"""/unsubscribe/<token> and /preferences/<token>: the links in every email's footer.

The token is the capability (signed, see newsletter.mail.links); a forged one answers 400 and
changes nothing. GET never changes anything: mail scanners prefetch links. Unsubscribe
tokens never expire; preferences tokens do (NEWSLETTER_MANAGE_TOKEN_DAYS), and an expired
one can ask for a fresh link by email (renew: it goes through the mail queue to the
subscriber's own address, so it tells the asker nothing).
"""

from __future__ import annotations

import datetime as dt
import json

from flask import Blueprint, Response, abort, make_response, render_template, request

from newsletter.errors import SubscriberError
from newsletter.mail.links import TEST_SUBSCRIBER_ID
from newsletter.store import mail_queue
from newsletter.store.models import Subscriber, SubscriberStatus
from subscribers import service
from subscribers.web.readers.data import personal_data
from subscribers.web.state import db, state

bp = Blueprint("manage", __name__)
PAUSES = {"1": 1, "2": 2, "4": 4}  # weeks a reader may pause for
ERASED = ("Everything we held about you is erased; the address stays on our do-not-mail "
          "list so no old list brings it back.")


def _person(subscriber_id: int) -> Subscriber | None:
    if subscriber_id == TEST_SUBSCRIBER_ID:
        abort(make_response(render_template(
            "message.html", title="This was a test email",
            text="Links in a test send belong to nobody: nothing was changed."), 200))
    return db().get(Subscriber, subscriber_id)


@bp.route("/unsubscribe/<token>", methods=["GET", "POST"])
def unsubscribe(token: str) -> str:
    """POST is RFC 8058 one-click too: body `List-Unsubscribe=One-Click`, form-urlencoded or
    multipart, no cookies, so no CSRF token (exempt in create_app). Answer 200, never a
    redirect (RFC 8058 section 3.2); a repeat changes nothing more."""
    person = _person(state().links.read_unsubscribe(token))  # BadToken -> 400 (app handler)
    # Only POST changes anything: Flask answers HEAD with this view too, and link scanners
    # prefetch with GET and HEAD alike.
    if request.method != "POST":
        return render_template("unsubscribe.html", person=person, token=token)
    if person is not None:  # None: already erased, and the address stays suppressed
        service.leave(db(), person, SubscriberStatus.UNSUBSCRIBED, "unsubscribed by link")
        db().commit()
    return render_template("message.html", title="You are unsubscribed",
                           text="We will not send you the newsletter again.")


@bp.route("/preferences/<token>", methods=["GET", "POST"])
def preferences(token: str) -> str | tuple[str, int]:
    person = _person(state().links.read_manage(token))  # ExpiredLink -> offer a fresh one
    if person is None:
        return render_template("message.html", title="Nothing here",
                               text="We hold nothing about this subscription any more."), 404
    notice = None
    if request.method == "POST":
        try:
            notice = _change(person, request.form)
        except SubscriberError as err:
            return render_template("preferences.html", person=person, token=token,
                                   error=str(err)), 400
        db().commit()
        if notice == ERASED:
            return render_template("message.html", title="Erased", text=ERASED)
    return render_template("preferences.html", person=person, token=token, notice=notice)


@bp.post("/preferences/<token>/renew")
def renew(token: str) -> str:
    """Mail a fresh preferences link to the subscriber of an expired preferences link
    (rate-limited per client in create_app; at most a few emails a day reach one address,
    newsletter.delivery.mail_drain)."""
    subscriber_id = state().links.read_for_renewal(token)
    person = _person(subscriber_id)
    if person is not None:
        mail_queue.enqueue(db(), mail_queue.MANAGE_LINK, person.id)
        db().commit()
    return render_template("message.html", title="Check your inbox",
                           text="If we still have this address, a fresh link to your "
                                "preferences is on its way.")


def _change(person: Subscriber, form) -> str:
    action, session = form.get("action"), db()
    if action == "name":
        person.name = service.clean_name(form.get("name", ""))
        return "Your name is saved."
    if action == "pause" and form.get("weeks") in PAUSES:
        until = state().settings.today() + dt.timedelta(weeks=PAUSES[form["weeks"]])
        service.pause(session, person, until)
        return f"Paused: no emails until {until:%d %B %Y}."
    if action == "resume":
        service.pause(session, person, None)
        return "Welcome back: your emails start again with the next edition."
    if action == "unsubscribe":
        service.leave(session, person, SubscriberStatus.UNSUBSCRIBED, "unsubscribed by link")
        return "You are unsubscribed. We will not send you the newsletter again."
    if action == "erase":
        service.remove(session, person.email)
        return ERASED
    raise SubscriberError("choose what to change")


@bp.get("/preferences/<token>/data.json")
def download(token: str) -> Response:
    """Everything we hold about the person (GDPR art. 15 and 20), as a JSON file."""
    person = _person(state().links.read_manage(token))
    if person is None:
        return Response("{}", mimetype="application/json", status=404)
    body = json.dumps(personal_data(db(), person), indent=2, ensure_ascii=False)
    return Response(body, mimetype="application/json", headers={
        "Content-Disposition": 'attachment; filename="daily-spin-my-data.json"'})
