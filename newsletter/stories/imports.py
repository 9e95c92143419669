"""Stories in the store: import files (all or nothing) and read a day's stories back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.errors import NoStories, StoryFormatError
from newsletter.store.models import Edition, Story
from newsletter.stories.data import StoryData
from newsletter.stories.parse import parse_file

STORY_SUFFIXES = {".txt", ".json", ".story"}


@dataclass(frozen=True)
class ImportReport:
    date: dt.date
    added: list[StoryData]
    replaced: list[StoryData]
    # Set when the day's edition was already frozen: the import changes what the web shows
    # for the day, not what was (or will be, on a resume) mailed.
    frozen_edition: bool


def story_files(paths: Iterable[str | Path]) -> list[Path]:
    """The files named, and story files found in the folders named, recursively, by name."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*")
                                if p.is_file() and p.suffix.lower() in STORY_SUFFIXES
                                and not any(part.startswith(".") for part in p.parts)))
        elif path.is_file():
            found.append(path)
        else:
            raise StoryFormatError(str(path), None, "no such file or folder")
    return found


def read_stories(paths: Iterable[str | Path]) -> list[StoryData]:
    """Parse every file first, so a bad one stops the import before anything is written."""
    stories: list[StoryData] = []
    for path in story_files(paths):
        try:
            data = path.read_bytes()
        except OSError as err:
            raise StoryFormatError(str(path), None, f"cannot read: {err.strerror}") from None
        stories.extend(parse_file(str(path), data))
    if not stories:
        raise StoryFormatError(", ".join(map(str, paths)), None,
                               "no story files found (.txt, .json or .story)")
    return stories


def import_stories(session: Session, stories: Sequence[StoryData],
                   date: dt.date) -> ImportReport:
    """Add stories to a day after its existing ones; a story whose title the day already
    has replaces it in place (re-importing a corrected file is safe)."""
    existing = {s.title: s for s in session.scalars(select(Story).where(Story.date == date))}
    position = session.scalar(select(func.max(Story.position)).where(Story.date == date))
    position = -1 if position is None else position
    added, replaced = [], []
    for story in stories:
        old = existing.get(story.title)
        if old is not None:
            slot = old.position
            session.delete(old)
            session.flush()  # free the (date, position) slot before reusing it
            replaced.append(story)
        else:
            position += 1
            slot = position
            added.append(story)
        model = story.to_model(date, slot)
        session.add(model)
        existing[story.title] = model  # two files with one title: the later one wins
    session.flush()
    frozen = session.scalar(select(Edition.id).where(Edition.date == date)) is not None
    return ImportReport(date, added, replaced, frozen)


def require_day(session: Session, date: dt.date) -> list[StoryData]:
    """The stories of a day, or NoStories."""
    stories = load_day(session, date)
    if not stories:
        raise NoStories(date)
    return stories


def load_day(session: Session, date: dt.date) -> list[StoryData]:
    """The stories of a day, in order."""
    rows = session.scalars(select(Story).where(Story.date == date).order_by(Story.position))
    return [StoryData.from_model(row) for row in rows]
