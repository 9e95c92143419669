"""The editors' desk (/admin/stories) through the real app on SQLite and PostgreSQL: log in,
add, a refused malformed story, edit, reorder, delete, test-send, and a frozen day."""

from __future__ import annotations

import datetime as dt
import html
import io
import json
import re

import pytest
from sqlalchemy import func, select

from newsletter.delivery.edition import freeze_edition
from newsletter.store.models import Delivery, Edition, StoryChange
from newsletter.stories.imports import load_day
from newsletter.stories.parse import parse_file
from newsletter.stories.text import render_text
from subscribers import service
from subscribers.web import create_app
from tests.conftest import SEED
from tests.test_story_parser import FIVE
from tests.test_story_text import TRICKY
from tests.test_web_archive_admin import login
from tests.webapp import CSRF, csrf_token, outbox, sessions

DAY = "2099-05-01"  # after today: the correction day is the next one, not today
LIST = f"/admin/stories?date={DAY}"
NO_NARRATIVE = "Title\n\nThe Facts\n\n- a fact\n\nThe Spin\n"
TEXTAREA = re.compile(r'<textarea[^>]*name="text"[^>]*>\n(.*?)</textarea>', re.S)


@pytest.fixture
def app(settings):
    return create_app(settings.model_copy(update={"admin_password": "correct horse",
                                                  "test_recipients": "desk@example.org"}))


@pytest.fixture
def editor(app):
    client = app.test_client()
    assert login(client, "correct horse").status_code == 302
    return client


def stories(settings, day: str = DAY):
    with sessions(settings)() as session:
        return load_day(session, dt.date.fromisoformat(day))


def log(settings) -> list[tuple[str, str, str | None, str]]:
    with sessions(settings)() as session:
        rows = session.scalars(select(StoryChange).order_by(StoryChange.id))
        return [(r.action.value, r.title, r.detail, r.client) for r in rows]


def post(client, path: str, form_page: str, **data):
    return client.post(path, data={**data, "csrf_token": csrf_token(client, form_page)})


def add(client, text: str, **extra):
    return post(client, f"/admin/stories/new?date={DAY}", f"/admin/stories/new?date={DAY}",
                text=text, **extra)


def story_id(answer) -> int:
    return int(re.search(r"highlight=(\d+)", answer.headers["Location"]).group(1))


def test_the_desk_is_behind_the_login_and_csrf(app, editor, settings):
    anonymous = app.test_client()
    for path in (LIST, f"/admin/stories/new?date={DAY}", "/admin/stories/1/edit"):
        answer = anonymous.get(path)
        assert answer.status_code == 302 and answer.headers["Location"].endswith("/admin/login")
    assert anonymous.post(f"/admin/stories/new?date={DAY}", data={"text": FIVE}
                          ).status_code == 400  # no CSRF token (and no login)
    assert editor.post(f"/admin/stories/new?date={DAY}", data={"text": FIVE}).status_code == 400
    assert stories(settings) == [] and log(settings) == []


def test_add_refuse_edit_reorder_delete(editor, settings):
    page = editor.get(LIST)
    assert page.status_code == 200 and ">draft<" in page.text and "Add a story" in page.text

    added = add(editor, SEED.read_text(encoding="utf-8"))
    assert added.status_code == 302 and added.headers["Location"].endswith(
        f"#story-{story_id(added)}")
    seed_id = story_id(added)
    listing = editor.get(added.headers["Location"]).text
    assert f'<tr id="story-{seed_id}" class="highlight">' in listing
    assert "Israel-Turkey Relaunch Defense" in listing and "<td>4</td>" in listing
    assert '<td dir="auto">Israel&#39;s Defense Ministry [via The Times of Israel]</td>' in listing
    assert stories(settings) == parse_file("seed", SEED.read_bytes())

    typed = "  \r\n" + NO_NARRATIVE.replace("Title", "<b>Title</b> {{ x }} שלום")
    refused = add(editor, typed)
    assert refused.status_code == 422
    assert "Nothing was saved." in refused.text
    assert "<strong>Line 9:</strong> expected at least one narrative" in refused.text
    assert "<mark>   9 │ </mark>" in refused.text  # the end of the text, where one was due
    kept = html.unescape(TEXTAREA.search(refused.text).group(1))
    assert kept == typed  # exactly as typed, CRLF (what browsers send) and all
    assert len(stories(settings)) == 1

    five_id = story_id(add(editor, FIVE))
    form = editor.get(f"/admin/stories/{seed_id}/edit")
    assert form.status_code == 200 and "cannot write exactly" not in form.text
    prefilled = html.unescape(TEXTAREA.search(form.text).group(1))
    assert prefilled == render_text(stories(settings)[0])
    assert parse_file("form", prefilled.encode()) == parse_file("seed", SEED.read_bytes())

    saved = post(editor, f"/admin/stories/{seed_id}/edit", f"/admin/stories/{seed_id}/edit",
                 text=render_text(TRICKY))
    assert saved.status_code == 302 and story_id(saved) == seed_id
    assert stories(settings) == [TRICKY, *parse_file("five", FIVE.encode())]
    listing = editor.get(LIST).text
    assert "<script>alert(1)</script>" not in listing  # escaped, here and in the preview
    assert html.escape(TRICKY.title) in listing

    moved = post(editor, f"/admin/stories/{five_id}/move", LIST, direction="up")
    assert moved.status_code == 302 and story_id(moved) == five_id
    assert [s.title for s in stories(settings)] == [
        "Fictional: Five Views of a Bridge", TRICKY.title]
    assert "already first" in editor.get(post(editor, f"/admin/stories/{five_id}/move", LIST,
                                              direction="up").headers["Location"]).text

    confirm = editor.get(f"/admin/stories/{seed_id}/delete")
    assert confirm.status_code == 200 and "Delete this story?" in confirm.text
    assert len(stories(settings)) == 2  # asking changes nothing
    deleted = post(editor, f"/admin/stories/{seed_id}/delete", f"/admin/stories/{seed_id}/delete")
    assert deleted.status_code == 302
    assert [s.title for s in stories(settings)] == ["Fictional: Five Views of a Bridge"]
    assert editor.get(f"/admin/stories/{seed_id}/edit").status_code == 404

    assert log(settings) == [
        ("added", "Israel-Turkey Relaunch Defense, Security Ties", None, "127.0.0.1"),
        ("added", "Fictional: Five Views of a Bridge", None, "127.0.0.1"),
        ("edited", TRICKY.title, "was 'Israel-Turkey Relaunch Defense, Security Ties'",
         "127.0.0.1"),
        ("moved", "Fictional: Five Views of a Bridge", "up, now number 1", "127.0.0.1"),
        ("deleted", TRICKY.title, None, "127.0.0.1")]
    foot = editor.get(LIST).text.split('id="changes"')[1]
    assert foot.count("127.0.0.1") == 5 and foot.index("deleted") < foot.index("added")
    # The deleted story's text is kept in the log, ready to paste back.
    assert html.escape(render_text(TRICKY), quote=False) in foot


def test_the_day_page_shows_the_preview_and_test_sends_from_it(editor, settings):
    add(editor, SEED.read_text(encoding="utf-8"))
    page = editor.get(LIST).text
    assert page.count("<iframe") == 2 and 'width="640"' in page and 'width="375"' in page
    assert 'placeholder="desk@example.org"' in page
    sent = post(editor, "/admin/test-send", LIST, date=DAY, to="", back="stories")
    assert sent.status_code == 302 and sent.headers["Location"].endswith(LIST)
    [mail] = outbox(settings)
    assert mail["Subject"].startswith("[TEST] ") and mail["To"] == "desk@example.org"
    assert "desk@example.org: sent" in editor.get(sent.headers["Location"]).text
    with sessions(settings)() as session:  # a test send records nothing
        assert session.scalar(select(func.count()).select_from(Edition)) == 0
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_a_json_file_and_what_the_desk_refuses(editor, settings):
    one = {"title": "From a file", "facts": ["f"], "narratives": [{"label": "A", "text": "t"}]}
    page = f"/admin/stories/new?date={DAY}"
    answer = editor.post(page, content_type="multipart/form-data", data={
        "csrf_token": csrf_token(editor, page), "text": "ignored when a file is chosen",
        "file": (io.BytesIO(json.dumps(one).encode()), "one.json")})
    assert answer.status_code == 302
    assert [s.title for s in stories(settings)] == ["From a file"]
    two = editor.post(page, content_type="multipart/form-data", data={
        "csrf_token": csrf_token(editor, page), "text": "",
        "file": (io.BytesIO(json.dumps([one, one]).encode()), "two.json")})
    assert two.status_code == 422
    assert "In the file two.json" in two.text and "holds 2 stories" in two.text
    again = add(editor, render_text(stories(settings)[0]))
    assert again.status_code == 422 and "already has a story titled" in again.text
    assert add(editor, "").status_code == 422
    assert len(stories(settings)) == 1


def test_a_story_the_text_format_cannot_hold_is_flagged_on_its_form(editor, settings, cli,
                                                                     tmp_path):
    odd = {"title": "Odd", "facts": ["one\n- two"], "narratives": [{"label": "A", "text": "t"}]}
    (tmp_path / "odd.json").write_text(json.dumps(odd), encoding="utf-8")
    assert cli("stories", "import", str(tmp_path / "odd.json"), "--date", DAY).exit_code == 0
    [change] = log(settings)
    assert change[0] == "imported" and change[3].startswith("command line")
    with sessions(settings)() as session:
        [odd_id] = session.scalars(select(StoryChange.story_id))
    form = editor.get(f"/admin/stories/{odd_id}/edit").text
    assert "cannot write exactly (fact 1)" in form


@pytest.fixture
def frozen(editor, settings, request):
    """A day whose edition began sending (frozen, status `sending`)."""
    seed_id = story_id(add(editor, SEED.read_text(encoding="utf-8")))
    with sessions(settings).begin() as session:
        service.add(session, "reader@example.org", confirmed=True)
        freeze_edition(session, settings, dt.date.fromisoformat(DAY))
    return seed_id


def test_a_frozen_day_refuses_every_change_with_409(editor, settings, frozen):
    before = stories(settings)
    listing = editor.get(LIST).text
    assert ">sending<" in listing and "Add a story" not in listing and "Edit</a>" not in listing
    attempts = [
        editor.get(f"/admin/stories/{frozen}/edit"),
        post(editor, f"/admin/stories/{frozen}/edit", LIST, text=FIVE),
        editor.get(f"/admin/stories/{frozen}/delete"),
        post(editor, f"/admin/stories/{frozen}/delete", LIST),
        post(editor, f"/admin/stories/{frozen}/move", LIST, direction="down"),
        editor.get(f"/admin/stories/new?date={DAY}"),
        post(editor, f"/admin/stories/new?date={DAY}", LIST, text=FIVE),
    ]
    for answer in attempts:
        assert answer.status_code == 409
        text = html.unescape(answer.text)
        assert "The edition of Friday 01 May 2099 is sending" in text
        assert "put a correction in the edition of Saturday 02 May 2099" in text
        assert 'href="/admin/stories/new?date=2099-05-02"' in answer.text
    assert stories(settings) == before and [c[0] for c in log(settings)] == ["added"]
    assert not CSRF.search(attempts[0].text)  # no form to send


def test_a_sent_day_says_so_and_points_past_frozen_days(editor, settings, frozen, cli):
    assert cli("send", "--date", DAY).exit_code == 0
    with sessions(settings).begin() as session:  # the next day began sending too
        session.add(Edition(date=dt.date(2099, 5, 2), subject="s", content={}))
    assert ">sent<" in editor.get(LIST).text
    refused = editor.get(f"/admin/stories/{frozen}/edit")
    assert refused.status_code == 409 and "is sent" in refused.text
    assert "Sunday 03 May 2099" in refused.text
