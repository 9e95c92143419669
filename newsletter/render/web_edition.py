"""The web edition: the day's stories as a web page (the archive, "view in browser").

Not the email shown in a browser: a page for screens of any width, where at 1000 px and
more a story's narratives sit side by side in one row (five as 3 + 2), every story whole,
with the story anchors the email links to (`#story-N`), Open Graph tags for shared links
and the Atom feed's address. Rendered once, when the edition is frozen
(newsletter.delivery.edition), from templates/web/edition.html (autoescaped). It holds no
per-recipient value: it is the same page for everyone.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Sequence

import jinja2

from newsletter.render.emails import rows, web_url
from newsletter.render.prose import paragraphs
from newsletter.render.slots import SlottedText
from newsletter.render.templates import templates_dir
from newsletter.settings import Settings
from newsletter.stories.data import StoryData


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir() / "web"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters.update(paragraphs=paragraphs, rows=rows, web_url=web_url)
    return env


def render_web_page(stories: Sequence[StoryData], *, date: dt.date, subject: str,
                    description: str, date_long: str, settings: Settings) -> SlottedText:
    """The page as a SlottedText without slots, stored and served like the email's HTML."""
    html = environment().get_template("edition.html").render(
        stories=stories, subject=subject, description=description, date=date,
        date_long=date_long, list_name=settings.list_name, base_url=settings.base_url,
        postal_address=settings.postal_address,
        image=next((s.image_url for s in stories if web_url(s.image_url)), None))
    return SlottedText((html,), ())
