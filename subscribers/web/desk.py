"""/admin/stories: the editors' desk. A day's stories in order, added and edited in the story
text format (or from a JSON file), moved and deleted; the day's preview and test send on the
same page, and the day's change log at its foot.

Behind the editors' login (admin.guard) and, like every form, CSRF-protected. Text goes
through the parser `newsletter stories import` uses: a refusal answers 422 with the
parser's line and expectation beside the text as typed, and nothing is stored. Once the
day's edition is frozen every change answers 409 (newsletter.stories.desk says why).
"""

from __future__ import annotations

import dataclasses
import datetime as dt

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from werkzeug.wrappers import Response

from newsletter.errors import EditionFrozen, StoryFormatError
from newsletter.store.models import Story
from newsletter.stories import desk
from newsletter.stories.data import StoryData
from newsletter.stories.log import changes
from newsletter.stories.parse import decode, parse_file, parse_text
from newsletter.stories.text import render_text, text_mismatch
from subscribers.web.admin import day_from, guard, preview
from subscribers.web.state import db, read_db, state

bp = Blueprint("desk", __name__, url_prefix="/admin/stories")
bp.before_request(guard)
TEXT_BOX = "desk"  # the path the parser names for text typed into the form
EXCERPT_LINES = 2  # lines shown either side of the one a refusal names


@bp.errorhandler(EditionFrozen)
def _frozen(error: EditionFrozen) -> tuple[str, int]:
    return render_template("admin/frozen.html", error=error, day=error.date), 409


@bp.get("")
def day() -> str:
    day = day_from(request.args.get("date"))
    session = read_db()  # reads only: answers while a send is writing (SQLite)
    stories = session.scalars(select(Story).where(Story.date == day).order_by(Story.position))
    return render_template(
        "admin/stories.html", **preview(day), stories=list(stories),
        state=desk.day_state(session, day), highlight=request.args.get("highlight", type=int),
        changes=changes(session, day), back="stories")


@bp.route("/new", methods=["GET", "POST"])
def new() -> Response | str | tuple[str, int]:
    day = day_from(request.args.get("date"))
    _ensure_open(day)
    if request.method != "POST":
        return _form(day, "")
    try:
        story = desk.add(db(), day, _submitted(), _client())
    except (StoryFormatError, desk.TitleTaken) as err:
        return _form(day, request.form.get("text", ""), err=err), 422
    db().commit()
    flash(f"Added “{story.title}”.", "ok")
    return _to_list(story)


@bp.route("/<int:story_id>/edit", methods=["GET", "POST"])
def edit(story_id: int) -> Response | str | tuple[str, int]:
    story = _story(story_id)
    _ensure_open(story.date)
    if request.method != "POST":
        data = StoryData.from_model(story)
        return _form(story.date, render_text(data), story=story, mismatch=text_mismatch(data))
    try:
        desk.edit(db(), story, _submitted(), _client())
    except (StoryFormatError, desk.TitleTaken) as err:
        return _form(story.date, request.form.get("text", ""), story=story, err=err), 422
    db().commit()
    flash(f"Saved “{story.title}”.", "ok")
    return _to_list(story)


@bp.route("/<int:story_id>/delete", methods=["GET", "POST"])
def delete(story_id: int) -> Response | str:
    """GET asks to confirm (the pages run no script, so confirming is a page of its own)."""
    story = _story(story_id)
    _ensure_open(story.date)
    if request.method != "POST":
        return render_template("admin/delete.html", story=story, day=story.date)
    desk.delete(db(), story, _client())
    db().commit()
    flash(f"Deleted “{story.title}”. The change log below keeps its text: paste it into "
          "a new story to bring it back.", "ok")
    return redirect(url_for("desk.day", date=story.date.isoformat()))


@bp.post("/<int:story_id>/move")
def move(story_id: int) -> Response:
    story = _story(story_id)
    _ensure_open(story.date)
    direction = request.form.get("direction")
    if direction not in ("up", "down"):
        abort(400, "Move a story 'up' or 'down'.")
    if desk.move(db(), story, -1 if direction == "up" else 1, _client()):
        db().commit()
    else:
        flash(f"“{story.title}” is already {'first' if direction == 'up' else 'last'}.",
              "error")
    return _to_list(story)


def _story(story_id: int) -> Story:
    story = db().get(Story, story_id)
    if story is None:
        abort(404, "There is no such story: it may have been deleted.")
    return story


def _ensure_open(day: dt.date) -> None:
    desk.ensure_open(db(), day, state().settings.today())


def _submitted() -> StoryData:
    """The one story of the form: from the uploaded file if one was chosen, else the text."""
    upload = request.files.get("file")
    text = request.form.get("text", "")
    if upload is not None and upload.filename:
        stories = parse_file(upload.filename, upload.read())
    elif text.strip():  # always the text format here, even when a title starts with '{'
        stories = [parse_text(TEXT_BOX, decode(text.encode(), TEXT_BOX))]
    else:
        raise StoryFormatError(TEXT_BOX, None, "expected a story: paste it into the text box "
                                               "or choose a JSON file")
    if len(stories) != 1:
        raise StoryFormatError(upload.filename, None,
                               f"holds {len(stories)} stories; the desk takes one at a time "
                               "(`newsletter stories import` takes many)")
    return stories[0]


@dataclasses.dataclass(frozen=True)
class Refusal:
    """Why the form's story was refused, for the page: the line of the text box (or the
    uploaded file's name) and the parser's words, with the lines around it."""

    reason: str
    line: int | None = None
    upload: str | None = None
    excerpt: tuple[tuple[int, str, bool], ...] = ()

    @classmethod
    def of(cls, err: Exception, text: str) -> Refusal:
        if not isinstance(err, StoryFormatError):
            return cls(str(err))
        if err.path != TEXT_BOX:
            return cls(err.reason, err.line, upload=err.path)
        if not err.line:
            return cls(err.reason)
        lines = decode(text.encode(), TEXT_BOX).split("\n")
        first = max(1, min(err.line, len(lines)) - EXCERPT_LINES)
        last = min(len(lines), err.line + EXCERPT_LINES)
        return cls(err.reason, err.line, excerpt=tuple(
            (n, lines[n - 1], n == err.line) for n in range(first, last + 1)))


def _form(day: dt.date, text: str, *, story: Story | None = None,
          err: Exception | None = None, mismatch: str | None = None) -> str:
    return render_template(
        "admin/story_form.html", **preview(day), story=story, text=text, mismatch=mismatch,
        refusal=Refusal.of(err, text) if err else None, back="stories")


def _to_list(story: Story) -> Response:
    return redirect(url_for("desk.day", date=story.date.isoformat(), highlight=story.id,
                            _anchor=f"story-{story.id}"))


def _client() -> str:
    """The client's address (behind a proxy, NEWSLETTER_TRUSTED_PROXIES makes it the real one)."""
    return request.remote_addr or "unknown"

