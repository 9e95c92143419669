"""A day's stories rendered once into the edition: the invariant HTML and text of the email,
with named slots for what differs per recipient (newsletter.render.slots.SLOTS).

    edition = render_edition(stories, date=day, settings=settings)
    html, text = edition.personalise(links.values(subscriber_id, email, day))  # microseconds

`RenderedEdition.to_json()` is what the editions table stores, so a resumed send mails the
same content. The pipeline itself (Jinja2 -> MJML -> inlined HTML) is
newsletter.render.emails.render_email, for other emails too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from newsletter.errors import NoStories
from newsletter.render.emails import RenderedEmail, render_email
from newsletter.render.size_budget import KB, fit, html_size
from newsletter.render.slots import SlottedText
from newsletter.render.web_edition import render_web_page
from newsletter.settings import Settings
from newsletter.stories.data import StoryData

PREHEADER_LENGTH = 140


@dataclass(frozen=True)
class RenderedEdition:
    date: dt.date
    subject: str
    preheader: str
    html: SlottedText
    text: SlottedText
    shrunk: int = 0  # how many of the last stories were cut to fit the size budget
    # The stories' titles, for the archive index and the feed (frozen with the edition;
    # editions frozen before they were kept have only their preheader).
    titles: tuple[str, ...] = ()

    @property
    def html_size(self) -> int:
        """Bytes of a recipient's HTML, measured with realistic (~150-character) values."""
        return html_size(self.html)

    def personalise(self, values: Mapping[str, str]) -> tuple[str, str]:
        """One recipient's (html, text); HTML values are escaped (SlottedText.fill_html)."""
        return self.html.fill_html(values), self.text.fill(values)

    def to_json(self) -> dict:
        return {"date": self.date.isoformat(), "subject": self.subject,
                "preheader": self.preheader, "html": self.html.to_json(),
                "text": self.text.to_json(), "shrunk": self.shrunk,
                "titles": list(self.titles)}

    @classmethod
    def from_json(cls, data: Mapping) -> RenderedEdition:
        return cls(date=dt.date.fromisoformat(data["date"]), subject=data["subject"],
                   preheader=data["preheader"], html=SlottedText.from_json(data["html"]),
                   text=SlottedText.from_json(data["text"]), shrunk=data["shrunk"],
                   titles=tuple(data.get("titles", ())))


def render_edition(stories: Sequence[StoryData], *, date: dt.date, settings: Settings,
                   web: bool = False) -> RenderedEdition:
    """Render the day's edition once. For mail, the last stories shrink while the HTML is
    above NEWSLETTER_SIZE_BUDGET_KB, and the text part carries every story whole. `web`
    gives the web edition instead (newsletter.render.web_edition): `html` is that page, every
    story whole, and `text` is empty (a page has no text part)."""
    if not stories:
        raise NoStories(date)
    stories = tuple(stories)
    subject = make_subject(stories, date, settings)
    context = {"title": subject, "stories": stories, "preheader": make_preheader(stories),
               "titles": tuple(" ".join(s.title.split()) for s in stories),
               "date_long": f"{date:%A}, {date.day} {date:%B %Y}",
               "narrative_words": settings.narrative_words}

    def render(shrunk: int) -> RenderedEmail:
        return render_email("edition", {**context, "full_count": len(stories) - shrunk},
                            settings=settings)

    if web:
        page = render_web_page(stories, date=date, subject=subject,
                               description=context["preheader"],
                               date_long=context["date_long"], settings=settings)
        return RenderedEdition(date=date, subject=subject, preheader=context["preheader"],
                               html=page, text=SlottedText(("",), ()),
                               titles=context["titles"])
    email, shrunk = fit(render, len(stories), lambda e: html_size(e.html),
                        settings.size_budget_kb * KB)
    return RenderedEdition(date=date, subject=subject, preheader=context["preheader"],
                           html=email.html, text=email.text, shrunk=shrunk,
                           titles=context["titles"])


def make_subject(stories: Sequence[StoryData], date: dt.date, settings: Settings) -> str:
    # One line: a title with a stray newline must not become a header injection.
    title = " ".join(stories[0].title.split())
    return f"{settings.list_name} — {date.day} {date:%b %Y}: {title}"


def make_preheader(stories: Sequence[StoryData]) -> str:
    """The first titles, cut at a word: what an inbox shows beside the subject."""
    text = " · ".join(" ".join(s.title.split()) for s in stories)
    if len(text) <= PREHEADER_LENGTH:
        return text
    return text[:PREHEADER_LENGTH].rsplit(" ", 1)[0].rstrip(" ·") + " …"
