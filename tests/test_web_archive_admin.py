"""Archive pages and the editors' pages, through the real app, after a real `newsletter send`."""

from __future__ import annotations

import json

import pytest

from newsletter.mail.links import Links
from subscribers import service
from subscribers.web import create_app
from tests.conftest import SEED
from tests.webapp import csrf_token, outbox, sessions

DAY = "2024-05-01"


@pytest.fixture
def readers(settings) -> dict[str, int]:
    with sessions(settings).begin() as session:
        return {email: service.add(session, email, confirmed=True).id
                for email in ("stays@example.org", "leaves@example.org")}


def test_an_unsubscribed_person_is_skipped_by_the_next_send(cli, settings, readers):
    client = create_app(settings).test_client(use_cookies=False)
    token = Links(settings).unsubscribe_token(readers["leaves@example.org"])
    assert client.post(f"/unsubscribe/{token}",
                       data={"List-Unsubscribe": "One-Click"}).status_code == 200
    assert cli("stories", "import", str(SEED), "--date", DAY).exit_code == 0
    assert cli("send", "--date", DAY).exit_code == 0
    sent_to = [m["To"].addresses[0].addr_spec for m in outbox(settings)]
    assert sent_to == ["stays@example.org"]


def test_the_archive_shows_sent_editions_without_personal_tokens(cli, settings, readers):
    cli("stories", "import", str(SEED), "--date", DAY)
    cli("send", "--date", DAY)
    client = create_app(settings).test_client()
    listing = client.get("/archive")
    assert listing.status_code == 200 and f'href="/archive/{DAY}"' in listing.text
    page = client.get(f"/archive/{DAY}")
    assert page.status_code == 200 and "The Facts" in page.text
    links = Links(settings)
    for person in readers.values():
        assert links.unsubscribe_token(person) not in page.text
    assert "/unsubscribe/" not in page.text and "@example.org" not in page.text
    assert "You are reading the web edition" in page.text  # not an email's footer
    assert f'href="{settings.base_url}/subscribe"' in page.text
    assert "Unsubscribe" not in page.text and "View in browser" not in page.text
    assert client.get("/archive/2001-01-01").status_code == 404
    assert client.get("/archive/not-a-date").status_code == 404


def test_admin_is_closed_without_the_password(settings):
    client = create_app(settings).test_client()
    for path in ("/admin/", "/admin/login"):
        answer = client.get(path)
        assert answer.status_code == 403 and "NEWSLETTER_ADMIN_PASSWORD" in answer.text
    token = csrf_token(client, "/subscribe")  # a valid form token does not open it either
    assert client.post("/admin/login", data={"password": "", "csrf_token": token}
                       ).status_code == 403


HOSTILE = {"title": "Markets <script>alert(1)</script> fall", "facts": ["a < b & c"],
           "narratives": [{"label": "Narrative A", "text": "</mj-text><b>bold</b>"}]}


@pytest.fixture
def editor(settings, cli, tmp_path):
    story = tmp_path / "hostile.json"
    story.write_text(json.dumps(HOSTILE), encoding="utf-8")
    assert cli("stories", "import", str(story), str(SEED), "--date", DAY).exit_code == 0
    app = create_app(settings.model_copy(update={"admin_password": "correct horse"}))
    return app.test_client()


def login(client, password: str):
    token = csrf_token(client, "/admin/login")
    return client.post("/admin/login", data={"password": password, "csrf_token": token})


def test_admin_needs_the_login_and_escapes_story_text(editor, settings):
    assert editor.get("/admin/").status_code == 302
    assert login(editor, "wrong").status_code == 403
    assert editor.get("/admin/").status_code == 302
    assert login(editor, "correct horse").status_code == 302
    page = editor.get(f"/admin/?date={DAY}")
    assert page.status_code == 200
    assert page.text.count("<iframe") == 2 and 'width="375"' in page.text
    assert "HTML size" in page.text and "Within budget" in page.text
    assert "<h2" not in page.text.split("srcdoc=")[1].split(">")[0]  # the email is escaped
    # The subject (first story's title) on the page; the email itself escaped again in srcdoc.
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text


def test_admin_test_send_goes_to_the_given_address(editor, settings):
    login(editor, "correct horse")
    token = csrf_token(editor, f"/admin/?date={DAY}")
    answer = editor.post("/admin/test-send", data={"date": DAY, "to": "editor@example.org",
                                                   "csrf_token": token})
    assert answer.status_code == 302
    [mail] = outbox(settings)
    assert mail["Subject"].startswith("[TEST] ")
    assert "editor@example.org: sent" in editor.get(f"/admin/?date={DAY}").text
