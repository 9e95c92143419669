"""The audit log of a day's stories: what changed, when, and from which client, whether
through the editors' desk or `newsletter stories import`; shown at the foot of the desk."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.store.models import StoryAction, StoryChange

CLIENT_LENGTH = 200  # StoryChange.client


def record(session: Session, date: dt.date, action: StoryAction, title: str, client: str, *,
           story_id: int | None = None, detail: str | None = None,
           before: str | None = None) -> None:
    session.add(StoryChange(date=date, story_id=story_id, action=action, title=title,
                            detail=detail, before=before, client=client[:CLIENT_LENGTH]))


def changes(session: Session, date: dt.date, limit: int = 200) -> list[StoryChange]:
    """The day's changes, newest first."""
    return list(session.scalars(select(StoryChange).where(StoryChange.date == date)
                                .order_by(StoryChange.id.desc()).limit(limit)))
