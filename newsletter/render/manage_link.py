"""The "here is a fresh link to your preferences" email, mailed when a reader follows a
preferences link that has expired (NEWSLETTER_MANAGE_TOKEN_DAYS): templates/email/
manage_link.mjml.j2 and manage_link.txt.j2, rendered once, the links as slots.
"""

from __future__ import annotations

from newsletter.render.emails import RenderedEmail, render_email
from newsletter.settings import Settings

MANAGE_LINK_SUBJECT = "Your link to your {list_name} preferences"


def render_manage_link(settings: Settings) -> tuple[str, RenderedEmail]:
    """The subject and the rendered email; each copy fills the usual SLOTS."""
    email = render_email("manage_link", {"title": "Your preferences",
                                         "days": settings.manage_token_days},
                         settings=settings)
    return MANAGE_LINK_SUBJECT.format(list_name=settings.list_name), email
