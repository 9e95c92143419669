"""The edition of a date: rendered once, frozen with its audience, in one transaction.

The first sender (or scheduled run) renders the day's stories, inserts the one edition row
for the date and, in the same transaction, one delivery row per confirmed, unsuppressed,
unpaused subscriber (INSERT ... SELECT ... ON CONFLICT DO NOTHING). Whoever loses the race
for the date's row reads the winner's. A resume never re-renders.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, Row, literal, select, update

from newsletter.render.slots import SlottedText
from newsletter.store.audience import audience
from newsletter.store.db import insert_for
from newsletter.store.tables import (
    DeliveryState,
    EditionStatus,
    deliveries,
    editions,
    subscribers,
    utcnow,
)

if TYPE_CHECKING:  # rendering (Jinja2, MJML, premailer), the stories and the ORM load only
    # to freeze or read an edition: `status` and `health` find one without them
    from sqlalchemy.orm import Session

    from newsletter.render.edition import RenderedEdition
    from newsletter.settings import Settings


def find_edition(db: Connection | Session, date: dt.date) -> Row | None:
    """The `editions` row of `date` (id, date, subject, content, status, counts, ...)."""
    return db.execute(select(editions).where(editions.c.date == date)).first()


def freeze_edition(session: Session, settings: Settings, date: dt.date) -> Row:
    """The edition of `date`, creating it (render + audience) if it does not exist yet.
    Runs inside the caller's transaction; commit it before sending anything."""
    edition = find_edition(session, date)
    if edition is not None:
        return edition
    from newsletter.render.edition import render_edition
    from newsletter.stories.desk import lock_day
    from newsletter.stories.imports import require_day

    # Wait for an editor's change in flight to that day (the desk holds the same lock), so
    # the frozen render has it, and no change lands after the freeze unseen.
    lock_day(session, date)
    stories = require_day(session, date)
    rendered = render_edition(stories, date=date, settings=settings)
    # Its web page is frozen with it: the archive shows what was sent, every story whole.
    web = render_edition(stories, date=date, settings=settings, web=True)
    insert = insert_for(session.get_bind().dialect.name)
    row = insert(editions).values(date=date, subject=rendered.subject,
                                  content={**rendered.to_json(), "web_html": web.html.to_json()},
                                  status=EditionStatus.SENDING,
                                  created_at=utcnow())
    inserted = session.execute(row.on_conflict_do_nothing(index_elements=["date"])
                               .returning(editions.c.id)).scalar()
    if inserted is not None:
        _freeze_audience(session, inserted, date)
    return find_edition(session, date)


def _freeze_audience(session: Session, edition_id: int, date: dt.date) -> None:
    chosen = select(literal(edition_id), subscribers.c.id,
                    literal(DeliveryState.PENDING.value), literal(0)).where(audience(date))
    insert = insert_for(session.get_bind().dialect.name)(deliveries).from_select(
        ["edition_id", "subscriber_id", "state", "attempts"], chosen)
    session.execute(insert.on_conflict_do_nothing(
        index_elements=["subscriber_id", "edition_id"]))


def rendered(edition: Row) -> RenderedEdition:
    from newsletter.render.edition import RenderedEdition

    return RenderedEdition.from_json(edition.content)


def web_page(db: Connection | Session, date: dt.date) -> SlottedText | None:
    """The edition of `date` as a web page (the archive, "view in browser"), frozen with
    it; None if there is none. Only that part of the content is read: the whole is ~3x
    larger (the email's HTML and text ride along)."""
    page = db.execute(select(editions.c.content["web_html"])
                      .where(editions.c.date == date)).scalar()
    return None if page is None else SlottedText.from_json(page)


def mark_complete(engine: Engine, edition_id: int) -> None:
    with engine.begin() as conn:
        conn.execute(update(editions).where(editions.c.id == edition_id,
                                            editions.c.status != EditionStatus.COMPLETE)
                     .values(status=EditionStatus.COMPLETE, completed_at=utcnow()))
