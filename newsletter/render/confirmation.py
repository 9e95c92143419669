"""The sign-up confirmation email (double opt-in): templates/email/confirm.mjml.j2 and
confirm.txt.j2, rendered once, with the confirmation link as one more per-recipient slot.
"""

from __future__ import annotations

from newsletter.render.emails import RenderedEmail, render_email
from newsletter.render.slots import SLOTS
from newsletter.settings import Settings

CONFIRM_SLOTS = (*SLOTS, "confirm_url")
CONFIRM_SUBJECT = "Please confirm your subscription to {list_name}"


def render_confirmation(settings: Settings) -> tuple[str, RenderedEmail]:
    """The subject and the rendered email; each copy fills CONFIRM_SLOTS."""
    email = render_email("confirm", {"title": "Confirm your subscription"},
                         settings=settings, slots=CONFIRM_SLOTS)
    return CONFIRM_SUBJECT.format(list_name=settings.list_name), email
