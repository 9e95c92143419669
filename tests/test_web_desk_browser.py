"""The editors' desk in headless Chromium at desktop width, served by the real app: the
story form beside the day's preview, desktop and phone frames side by side."""

from __future__ import annotations

import threading

import pytest
from werkzeug.serving import make_server

from newsletter.render.screenshots import chromium
from subscribers.web import create_app
from tests.conftest import SEED

pytestmark = pytest.mark.browser
DAY = "2099-05-01"
WIDTH = 1280  # an editor's laptop: the 640 px and 375 px frames fit side by side


@pytest.fixture
def desk_url(settings):
    server = make_server("127.0.0.1", 0, None, threaded=True)
    base = f"http://127.0.0.1:{server.server_port}"
    # The app's own address, so its session cookie is not marked Secure on plain http.
    server.app = create_app(settings.model_copy(update={"admin_password": "correct horse",
                                                        "base_url": base}))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield base
    server.shutdown()
    thread.join(timeout=10)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the layout, not the store
def test_the_form_and_the_preview_at_desktop_width(desk_url, chromium_path, tmp_path):
    with chromium(chromium_path) as browser:
        page = browser.new_page(viewport={"width": WIDTH, "height": 900})
        page.goto(f"{desk_url}/admin/login")
        page.fill("#password", "correct horse")
        with page.expect_navigation():
            page.click("button[type=submit]")
        page.goto(f"{desk_url}/admin/stories/new?date={DAY}")
        page.fill("#text", SEED.read_text(encoding="utf-8"))
        with page.expect_navigation():
            page.click("text=Add the story")
        assert page.url.endswith("#story-1") and "?date=" + DAY in page.url
        assert page.locator("tr.highlight td").nth(1).inner_text().startswith("Israel-Turkey")

        page.goto(desk_url + page.locator("#add").get_attribute("href"))  # "Add a story"
        page.fill("#text", "A title\n\nThe Facts\n\n- a fact\n\nThe Spin\n")
        with page.expect_navigation():
            page.click("text=Add the story")
        refusal = page.locator("#refusal")
        assert "Line 8: expected at least one narrative" in refusal.inner_text()
        assert page.input_value("#text").endswith("The Spin\n")  # kept as typed

        text_box = page.locator("#text").bounding_box()
        desktop = page.locator("iframe[title='Desktop preview']").bounding_box()
        phone = page.locator("iframe[title='Phone preview']").bounding_box()
        assert text_box["width"] > 900 and text_box["height"] > 300
        assert 640 <= desktop["width"] <= 642 and 375 <= phone["width"] <= 377  # + borders
        assert abs(desktop["y"] - phone["y"]) < 2 and phone["x"] > desktop["x"] + 640
        assert phone["x"] + phone["width"] <= WIDTH  # no sideways scrolling
        [frame] = [f for f in page.frames if f != page.main_frame][:1]
        assert "Israel-Turkey Relaunch Defense" in frame.locator("h2").first.inner_text()

        # Tall enough for the form and the frames at once: a full-page capture leaves
        # sandboxed (out-of-process) frames blank.
        page.set_viewport_size({"width": WIDTH, "height": 2400})
        page.screenshot(path=str(tmp_path / "desk.png"))
        assert (tmp_path / "desk.png").stat().st_size > 20_000
