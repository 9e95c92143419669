"""Stories in the store: import files (all or nothing), read a day's stories back, and
write them out as files that import reads back unchanged."""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from newsletter.errors import NewsletterError, NoStories, StoryFormatError
from newsletter.store.models import Edition, Story, StoryAction
from newsletter.stories.data import StoryData
from newsletter.stories.log import record
from newsletter.stories.parse import parse_file
from newsletter.stories.text import render_json, render_text, text_mismatch

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


def import_stories(session: Session, stories: Sequence[StoryData], date: dt.date, *,
                   client: str = "command line") -> ImportReport:
    """Add stories to a day after its existing ones; a story whose title the day already
    has replaces it in place (re-importing a corrected file is safe). Each one is logged
    (newsletter.stories.log) as coming from `client`."""
    existing = {s.title: s for s in session.scalars(select(Story).where(Story.date == date))}
    position = next_position(session, date) - 1
    added, replaced = [], []
    for story in stories:
        old = existing.get(story.title)
        before = None
        if old is not None:
            slot = old.position
            before = render_text(StoryData.from_model(old))
            session.delete(old)
            session.flush()  # free the (date, position) slot before reusing it
            replaced.append(story)
        else:
            position += 1
            slot = position
            added.append(story)
        model = story.to_model(date, slot)
        session.add(model)
        session.flush()  # the new row's id, for the log
        record(session, date, StoryAction.IMPORTED, story.title, client, story_id=model.id,
               detail=("replaced" if before else "added")
               + (f" from {story.origin}" if story.origin else ""),
               before=before)
        existing[story.title] = model  # two files with one title: the later one wins
    frozen = session.scalar(select(Edition.id).where(Edition.date == date)) is not None
    return ImportReport(date, added, replaced, frozen)


def next_position(session: Session, date: dt.date) -> int:
    """The place after the day's last story."""
    last = session.scalar(select(func.max(Story.position)).where(Story.date == date))
    return 0 if last is None else last + 1


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


def export_stories(stories: Sequence[StoryData], folder: Path) -> list[Path]:
    """Write each story to `folder` as `NN_title.txt`, numbered in the day's order (import
    reads a folder in name order), or as `NN_title.json` when the text format cannot hold
    it exactly (story_text.text_mismatch). All or nothing: the files are written in a
    hidden folder first (import skips those) and moved in at the end; a folder that
    already holds story files is refused, so an old export cannot mix with this one."""
    folder.mkdir(parents=True, exist_ok=True)
    if clash := story_files([folder]):
        raise NewsletterError(f"{folder} already holds story files ({clash[0].name}...): "
                              "export into an empty folder")
    width = max(2, len(str(len(stories))))
    scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=folder))
    try:
        names = []
        for n, story in enumerate(stories, start=1):
            exact = text_mismatch(story) is None
            name = f"{n:0{width}d}_{_slug(story.title)}.{'txt' if exact else 'json'}"
            (scratch / name).write_text(render_text(story) if exact else render_json(story),
                                        encoding="utf-8", newline="\n")
            names.append(name)
        for name in names:
            os.replace(scratch / name, folder / name)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return [folder / name for name in names]


def _slug(title: str, length: int = 60) -> str:
    """A file name part any file system takes: ASCII letters and digits joined by '-'."""
    ascii_title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_title.lower()).strip("-")
    return slug[:length].rstrip("-") or "story"
