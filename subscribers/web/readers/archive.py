"""GET /archive, /archive/<date> and /feed.xml: sent editions as web pages and as a feed.

A page is the stored web edition (frozen at its first send, newsletter.render.web_edition). It
holds no personal token or address, so a shared link unsubscribes no one. The index and
the Atom feed list editions by date with their stories' titles, read from the frozen
content, so they name what the pages show.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from feedgen.feed import FeedGenerator
from flask import Blueprint, Response, abort, render_template
from sqlalchemy import select

from newsletter.delivery.edition import web_page
from newsletter.mail.links import slot_values
from newsletter.store.models import Edition
from subscribers.web.state import read_db, state

bp = Blueprint("archive", __name__)
PUBLIC = "public, max-age=300"  # the same for everyone: caches may keep it a while
FEED_SIZE = 30


@dataclass(frozen=True)
class Listed:
    date: dt.date
    subject: str
    titles: Sequence[str]
    published: dt.datetime

    @property
    def date_long(self) -> str:
        return f"{self.date:%A}, {self.date.day} {self.date:%B %Y}"


def listed(limit: int) -> list[Listed]:
    """The newest editions, without loading their rendered HTML."""
    rows = read_db().execute(select(Edition.date, Edition.subject, Edition.created_at,
                               Edition.content["titles"], Edition.content["preheader"])
                        .order_by(Edition.date.desc()).limit(limit))
    # Editions frozen before the titles were kept have their preheader: the first titles.
    return [Listed(day, subject, titles or [preheader], created)
            for day, subject, created, titles, preheader in rows]


@bp.get("/archive")
def index() -> Response:
    response = Response(render_template("archive.html", editions=listed(1000)))
    response.headers["Cache-Control"] = PUBLIC
    return response


@bp.get("/archive/<date>")
def edition(date: str) -> Response:
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        abort(404)
    page = web_page(read_db(), day)
    if page is None:
        abort(404, f"There is no edition for {date}.")
    html = page.fill_html(
        slot_values(state().settings.base_url, day, email="", token=None))
    return Response(html, headers={"Cache-Control": PUBLIC})


@bp.get("/feed.xml")
def feed() -> Response:
    """Atom (RFC 4287) of the last 30 editions: title, date, link, the stories' titles."""
    settings = state().settings
    base = settings.base_url
    editions = listed(FEED_SIZE)
    feed = FeedGenerator()
    feed.id(f"{base}/archive")
    feed.title(settings.list_name)
    feed.subtitle("Every side of the story, once a day")
    feed.author({"name": settings.list_name})
    feed.link(href=f"{base}/archive", rel="alternate", type="text/html")
    feed.link(href=f"{base}/feed.xml", rel="self", type="application/atom+xml")
    feed.language("en")
    # RFC 4287 4.2.15: when the feed last changed, not when it was asked for.
    feed.updated(editions[0].published if editions else dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    for item in editions:
        entry = feed.add_entry(order="append")
        url = f"{base}/archive/{item.date.isoformat()}"
        entry.id(url)
        entry.title(item.subject)
        entry.link(href=url, rel="alternate", type="text/html")
        entry.published(item.published)
        entry.updated(item.published)
        entry.summary(" · ".join(item.titles))
    return Response(feed.atom_str(pretty=True), mimetype="application/atom+xml",
                    headers={"Cache-Control": PUBLIC})
