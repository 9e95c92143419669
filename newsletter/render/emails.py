"""Any email of ours, rendered once: Jinja2 -> MJML -> HTML -> inlined CSS, plus a text part.

An email NAME is two templates in templates/email/: `NAME.mjml.j2` (autoescaped: every
value is text, so `<`, `{{ }}` or `</mj-text>` in it can never become markup) and
`NAME.txt.j2` (not escaped: plain text carries no entities). Both may include the shared
`_head.mjml.j2`, `_footer.mjml.j2` and `_footer.txt.j2`.

Per-recipient values are never rendered in: each slot variable (`email`, `unsubscribe_url`,
`preferences_url`, `webview_url`; newsletter.render.slots.SLOTS) is set to a random marker and the
output split there, so a recipient's copy is a join, not a re-render. For a one-off email,
such as the sign-up confirmation (templates `confirm.mjml.j2` + `confirm.txt.j2`)::

    email = render_email("confirm", {"title": "Confirm", "confirm_url": url},
                         settings=settings)
    html, text = email.personalise({"email": address, "unsubscribe_url": ..., ...})

Variables every template gets: `list_name`, `postal_address` (may be None), `base_url`, and
the slots; `title` (the <title>) comes from the caller. Filters: `paragraphs`, `rows`,
`web_url`, `opening` and `wrap` (the text part's 78 columns; newsletter.render.prose).
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

import jinja2

from newsletter.render.inline import inline_css, mjml_to_html
from newsletter.render.prose import opening, paragraphs, wrap
from newsletter.render.slots import SLOTS, Markers, SlottedText
from newsletter.render.templates import templates_dir
from newsletter.settings import Settings

# At most four narratives side by side in a row (the web edition); the email asks for pairs.
MAX_COLUMNS = 4


@dataclass(frozen=True)
class RenderedEmail:
    html: SlottedText
    text: SlottedText

    def personalise(self, values: Mapping[str, str]) -> tuple[str, str]:
        """One recipient's (html, text): the slot values, HTML-escaped in the HTML part."""
        return self.html.fill_html(values), self.text.fill(values)


def rows(items: Sequence, width: int = MAX_COLUMNS) -> list[Sequence]:
    """Balanced rows of at most `width`: 5 narratives become 3 + 2, not 4 + 1."""
    if not items:
        return []
    count = math.ceil(len(items) / width)
    size = math.ceil(len(items) / count)
    return [items[i:i + size] for i in range(0, len(items), size)]


def web_url(url: str | None) -> str | None:
    """Only http(s) URLs become links or images: a story's `javascript:` stays text."""
    return url if url and url.startswith(("https://", "http://")) else None


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(templates_dir() / "email"),
        autoescape=jinja2.select_autoescape(enabled_extensions=("mjml.j2",),
                                            default_for_string=False),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(paragraphs=paragraphs, rows=rows, web_url=web_url, opening=opening,
                       wrap=wrap)
    return env


def render_email(name: str, context: Mapping[str, object], *, settings: Settings,
                 slots: Sequence[str] = SLOTS) -> RenderedEmail:
    """Render templates/email/NAME.mjml.j2 and NAME.txt.j2 once, with slots left open."""
    markers = Markers(slots)
    markers.check_absent(*_strings(context))
    values = {"list_name": settings.list_name, "postal_address": settings.postal_address,
              "base_url": settings.base_url, **context, **markers.by_name}
    env = environment()
    mjml = env.get_template(f"{name}.mjml.j2").render(values)
    html = inline_css(mjml_to_html(mjml))
    text = env.get_template(f"{name}.txt.j2").render(values)
    return RenderedEmail(markers.split(html), markers.split(text))


def _strings(value: object) -> Iterator[str]:
    """Every string inside a context: story text must not hold a slot marker."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            yield from _strings(getattr(value, field.name))
