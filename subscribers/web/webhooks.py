"""POST /webhooks/<esp>: bounce and complaint events; each address is suppressed.

Each provider's module verifies and parses its posts (newsletter.providers.WEBHOOKS); a
provider whose setting is not configured gets 403 with the setting to set, an unverified,
stale or replayed post 401. All change nothing. A verified post answers 200 even for events
we ignore, or the provider would retry them for hours.
"""

from __future__ import annotations

import logging

from flask import Blueprint, abort, jsonify, request
from werkzeug.wrappers import Response

from newsletter.providers import WEBHOOKS
from newsletter.providers.webhooks import WebhookRefused
from subscribers.web.state import db, state
from subscribers.webhooks import apply

bp = Blueprint("webhooks", __name__, url_prefix="/webhooks")
log = logging.getLogger(__name__)


@bp.post("/<esp>")
def receive(esp: str) -> Response | tuple[Response, int]:
    read = WEBHOOKS.get(esp)
    if read is None:
        abort(404)
    body = request.get_data(cache=False)
    try:
        session = db()
        suppressed = apply(session, read(state().settings, request.headers, body))
    except WebhookRefused as err:
        log.warning("%s webhook refused: %s", esp, err)
        return jsonify(error=str(err)), err.status
    session.commit()
    return jsonify(suppressed=suppressed)
