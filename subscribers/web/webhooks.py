"""POST /webhooks/<esp>: bounce and complaint events; each address is suppressed.

Verification is subscribers.webhooks; a provider whose setting is not configured gets 403
with the setting to set, an unverified post 401. Both change nothing. A verified post
answers 200 even for events we ignore, or the provider would retry them for hours.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, jsonify, request
from werkzeug.wrappers import Response

from subscribers import webhooks as hooks
from subscribers.web.state import db, state

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)


@bp.post("/<esp>")
def receive(esp: str) -> Response | tuple[Response, int]:
    body, s = request.get_data(cache=False), state().settings
    try:
        if esp == "sendgrid":
            hooks.verify_sendgrid(
                s.sendgrid_webhook_public_key,
                request.headers.get("X-Twilio-Email-Event-Webhook-Signature"),
                request.headers.get("X-Twilio-Email-Event-Webhook-Timestamp"), body)
            events = hooks.parse_sendgrid(body)
        elif esp == "mailgun":
            # Not configured answers 403 before the body is even read.
            payload = hooks.load_json(body) if s.mailgun_webhook_signing_key else {}
            hooks.verify_mailgun(s.mailgun_webhook_signing_key, payload,
                                 seen=state().mailgun_tokens)
            events = hooks.parse_mailgun(payload)
        elif esp == "postmark":
            hooks.verify_postmark(s.postmark_webhook_username, s.postmark_webhook_password,
                                  request.headers.get("Authorization"))
            events = hooks.parse_postmark(hooks.load_json(body))
        else:
            abort(404)
        session = db()
        suppressed = hooks.apply(session, events)
    except hooks.WebhookRefused as err:
        log.warning("%s webhook refused: %s", esp, err)
        return jsonify(error=str(err)), err.status
    session.commit()
    return jsonify(suppressed=suppressed)
