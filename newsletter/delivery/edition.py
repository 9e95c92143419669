"""The edition of a date: rendered once, frozen with its audience, in one transaction.

The first sender (or scheduled run) renders the day's stories, inserts the one edition row
for the date and, in the same transaction, one delivery row per confirmed, unsuppressed,
unpaused subscriber (INSERT ... SELECT ... ON CONFLICT DO NOTHING). Whoever loses the race
for the date's row reads the winner's. A resume never re-renders.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from sqlalchemy import Engine, literal, select
from sqlalchemy.orm import Session

from newsletter.render.slots import SlottedText
from newsletter.settings import Settings
from newsletter.store.audience import audience
from newsletter.store.db import insert_for
from newsletter.store.models import (
    Delivery,
    DeliveryState,
    Edition,
    EditionStatus,
    Subscriber,
    utcnow,
)
from newsletter.stories.desk import lock_day
from newsletter.stories.imports import require_day

if TYPE_CHECKING:  # rendering (Jinja2, MJML, premailer) loads only to render or read one:
    # `status` and `health` find an edition without it
    from newsletter.render.edition import RenderedEdition


def find_edition(session: Session, date: dt.date) -> Edition | None:
    return session.scalar(select(Edition).where(Edition.date == date))


def freeze_edition(session: Session, settings: Settings, date: dt.date) -> Edition:
    """The edition of `date`, creating it (render + audience) if it does not exist yet.
    Runs inside the caller's transaction; commit it before sending anything."""
    edition = find_edition(session, date)
    if edition is not None:
        return edition
    from newsletter.render.edition import render_edition

    # Wait for an editor's change in flight to that day (the desk holds the same lock), so
    # the frozen render has it, and no change lands after the freeze unseen.
    lock_day(session, date)
    stories = require_day(session, date)
    rendered = render_edition(stories, date=date, settings=settings)
    # Its web page is frozen with it: the archive shows what was sent, every story whole.
    web = render_edition(stories, date=date, settings=settings, web=True)
    insert = insert_for(session.get_bind().dialect.name)
    row = insert(Edition).values(date=date, subject=rendered.subject,
                                 content={**rendered.to_json(), "web_html": web.html.to_json()},
                                 status=EditionStatus.SENDING,
                                 created_at=utcnow())
    inserted = session.execute(row.on_conflict_do_nothing(index_elements=["date"])
                               .returning(Edition.id)).scalar()
    if inserted is not None:
        _freeze_audience(session, inserted, date)
    session.expire_all()
    return find_edition(session, date)


def _freeze_audience(session: Session, edition_id: int, date: dt.date) -> None:
    chosen = select(literal(edition_id), Subscriber.id, literal(DeliveryState.PENDING.value),
                    literal(0)).where(audience(date))
    insert = insert_for(session.get_bind().dialect.name)(Delivery).from_select(
        ["edition_id", "subscriber_id", "state", "attempts"], chosen)
    session.execute(insert.on_conflict_do_nothing(
        index_elements=["subscriber_id", "edition_id"]))


def rendered(edition: Edition) -> RenderedEdition:
    from newsletter.render.edition import RenderedEdition

    return RenderedEdition.from_json(edition.content)


def web_page(edition: Edition) -> SlottedText:
    """The edition as a web page (the archive, "view in browser"), frozen with it."""
    return SlottedText.from_json(edition.content["web_html"])


def mark_complete(engine: Engine, edition_id: int) -> None:
    with Session(engine) as session, session.begin():
        edition = session.get(Edition, edition_id)
        if edition is not None and edition.status != EditionStatus.COMPLETE:
            edition.status, edition.completed_at = EditionStatus.COMPLETE, utcnow()
