"""The editors' desk: a day's stories added, edited, moved and deleted one at a time, each
change logged (newsletter.stories.log) with the client it came from.

Once the day's edition is frozen (its first send rendered it, see newsletter.delivery.edition) its
stories stay as they are: subscribers get the frozen version and the archive shows it, so
changing the stories would only make the desk disagree with what readers have. A correction
goes into the next edition that is still open (EditionFrozen names it).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from newsletter.errors import EditionFrozen, NewsletterError
from newsletter.store.models import Edition, EditionStatus, Story, StoryAction
from newsletter.stories.data import StoryData
from newsletter.stories.imports import next_position
from newsletter.stories.log import record
from newsletter.stories.text import render_text

_DAY_LOCKS = 19_001  # any fixed number: the advisory-lock space of story days


class TitleTaken(NewsletterError):
    """The day already has a story with this title (imports replace by title, so two would
    make a re-import ambiguous)."""


@dataclass(frozen=True)
class DayState:
    name: str  # draft (no send yet), sending, sent
    edition: Edition | None

    @property
    def frozen(self) -> bool:
        return self.edition is not None


def day_state(session: Session, date: dt.date) -> DayState:
    edition = session.scalar(select(Edition).where(Edition.date == date))
    if edition is None:
        return DayState("draft", None)
    return DayState("sent" if edition.status == EditionStatus.COMPLETE else "sending", edition)


def ensure_open(session: Session, date: dt.date, today: dt.date) -> None:
    """EditionFrozen when the day's edition is frozen; otherwise the day is locked for the
    rest of the caller's transaction (lock_day)."""
    lock_day(session, date)
    state = day_state(session, date)
    if state.edition is not None:
        raise EditionFrozen(date, state.name, state.edition.created_at,
                            next_open_day(session, max(date + dt.timedelta(days=1), today)))


def lock_day(session: Session, date: dt.date) -> None:
    """Serialise changes to one day's stories until the transaction ends, so two editors
    moving stories at once cannot collide on a position. SQLite needs nothing: every
    transaction there takes the write lock at BEGIN (newsletter.store.db). On PostgreSQL a
    transaction-scoped advisory lock keyed on the date; freezing the edition takes the same
    lock (newsletter.delivery.edition), so it waits for a change in flight."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:space, :day)"),
                        {"space": _DAY_LOCKS, "day": date.toordinal()})


def next_open_day(session: Session, start: dt.date) -> dt.date:
    frozen = set(session.scalars(select(Edition.date).where(Edition.date >= start)))
    day = start
    while day in frozen:
        day += dt.timedelta(days=1)
    return day


def add(session: Session, date: dt.date, data: StoryData, client: str) -> Story:
    """The story after the day's last one."""
    _check_title(session, date, data.title)
    story = data.to_model(date, next_position(session, date))
    session.add(story)
    session.flush()
    record(session, date, StoryAction.ADDED, story.title, client, story_id=story.id)
    return story


def edit(session: Session, story: Story, data: StoryData, client: str) -> None:
    """New content for the story; it keeps its id and its place in the day."""
    _check_title(session, story.date, data.title, but=story.id)
    before = render_text(StoryData.from_model(story))
    renamed = f"was '{story.title}'" if story.title != data.title else None
    data.apply(story)
    session.flush()
    record(session, story.date, StoryAction.EDITED, story.title, client, story_id=story.id,
           detail=renamed, before=before)


def delete(session: Session, story: Story, client: str) -> None:
    record(session, story.date, StoryAction.DELETED, story.title, client, story_id=story.id,
           before=render_text(StoryData.from_model(story)))
    session.delete(story)
    session.flush()


def move(session: Session, story: Story, step: int, client: str) -> bool:
    """Swap the story with its neighbour before (step -1) or after (step 1); False when it
    is already first or last."""
    order = Story.position.desc() if step < 0 else Story.position
    beyond = Story.position < story.position if step < 0 else Story.position > story.position
    other = session.scalar(select(Story).where(Story.date == story.date, beyond)
                           .order_by(order).limit(1))
    if other is None:
        return False
    mine, theirs = story.position, other.position
    # (date, position) is unique and checked row by row: park one story on a free slot.
    story.position = -1
    session.flush()
    other.position = mine
    session.flush()
    story.position = theirs
    session.flush()
    place = list(session.scalars(select(Story.id).where(Story.date == story.date)
                                 .order_by(Story.position))).index(story.id) + 1
    record(session, story.date, StoryAction.MOVED, story.title, client, story_id=story.id,
           detail=f"{'up' if step < 0 else 'down'}, now number {place}")
    return True


def _check_title(session: Session, date: dt.date, title: str, but: int | None = None) -> None:
    query = select(Story.id).where(Story.date == date, Story.title == title)
    if but is not None:
        query = query.where(Story.id != but)
    if session.scalar(query.limit(1)) is not None:
        raise TitleTaken(f"{date} already has a story titled {title!r}: edit that one "
                         "instead, or give this one another title")
