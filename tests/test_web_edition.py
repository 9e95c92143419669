"""The web edition (/archive/<date>) as a web page, the archive index and the Atom feed."""

from __future__ import annotations

import datetime as dt

import feedparser
import lxml.html
import pytest

from newsletter.render.edition import render_edition
from newsletter.render.screenshots import PHONE_WIDTH, chromium, open_page
from newsletter.settings import load_settings
from newsletter.stories.imports import read_stories
from subscribers.web import create_app
from tests.conftest import SAMPLES, SEED
from tests.test_layout import CONTRASTS, SPLIT_WORDS
from tests.test_rendering import AWKWARD, DAY, LONG, story

FOUR = story("Four sides", ("Narrative A", "Narrative B", "Narrative C", "Cynical narrative"))
HARD_DAY = (FOUR, *AWKWARD)  # five narratives, a 600-word one, right-to-left text

# Each narrative's box and its story's number, in document order.
NARRATIVES = """() => [...document.querySelectorAll('.narrative')].map(n => {
  const r = n.getBoundingClientRect();
  return {story: n.closest('article').id, label: n.querySelector('h4').textContent,
          x: r.left, y: r.top, width: r.width};
})"""


def page_of(stories) -> str:
    settings = load_settings(_env_file=None, base_url="https://news.example.org",
                             postal_address="1 Test Street, Testville")
    return render_edition(stories, date=DAY, settings=settings, web=True).html.fill({})


@pytest.fixture(scope="module", params=["samples", "hard day"])
def day(request):
    stories = read_stories([SAMPLES]) if request.param == "samples" else HARD_DAY
    return stories, page_of(stories)


@pytest.fixture(scope="module")
def browser(chromium_path):
    with chromium(chromium_path) as browser:
        yield browser


def rows_of(boxes: list[dict]) -> dict[str, list[int]]:
    """Per story, how many narratives sit on each row."""
    shape: dict[str, dict[int, int]] = {}
    for box in boxes:
        rows = shape.setdefault(box["story"], {})
        rows[round(box["y"])] = rows.get(round(box["y"]), 0) + 1
    return {name: [rows[y] for y in sorted(rows)] for name, rows in shape.items()}


@pytest.mark.browser
@pytest.mark.parametrize("width", [1000, 1280])
def test_wide_screens_put_a_storys_narratives_in_one_row(browser, day, width):
    stories, html = day
    with open_page(browser, html, width) as page:
        boxes = page.evaluate(NARRATIVES)
        assert not page.evaluate(SPLIT_WORDS, ".narrative, .lede")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
    expected = {f"story-{i}": ([len(s.narratives)] if len(s.narratives) <= 4
                               else [3, 2] if len(s.narratives) == 5 else None)
                for i, s in enumerate(stories, 1)}
    assert rows_of(boxes) == expected
    assert min(b["width"] for b in boxes) >= 220


@pytest.mark.browser
def test_phones_stack_the_narratives(browser, day):
    _, html = day
    with open_page(browser, html, PHONE_WIDTH) as page:
        shape = rows_of(page.evaluate(NARRATIVES))
        assert page.evaluate("document.documentElement.scrollWidth") <= PHONE_WIDTH
    assert all(set(rows) == {1} for rows in shape.values())


@pytest.mark.browser
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_page_is_readable_in_light_and_dark_mode(browser, scheme):
    with open_page(browser, page_of(HARD_DAY), 1280, color_scheme=scheme) as page:
        texts = page.evaluate(CONTRASTS)
        size = page.evaluate("parseFloat(getComputedStyle(document.querySelector("
                             "'.narrative p')).fontSize)")
        direction = page.evaluate("""() => [...document.querySelectorAll('p')]
            .filter(p => p.textContent.includes('فقرة عربية'))
            .map(p => getComputedStyle(p).direction)""")
    assert not [t for t in texts if not t["background"] or t["ratio"] < 4.5]
    assert size >= 16 and direction and set(direction) == {"rtl"}


def test_the_page_has_every_story_whole_with_anchors_credits_and_headings():
    doc = lxml.html.document_fromstring(page_of(HARD_DAY))
    text = " ".join(doc.text_content().split())
    assert " ".join(LONG.narratives[1].text.split()) in text  # 600 words, whole
    assert [a.get("id") for a in doc.xpath("//article")] == [
        f"story-{i}" for i in range(1, len(HARD_DAY) + 1)]
    assert doc.xpath("//nav//a/@href")[:2] == ["#story-1", "#story-2"]
    assert doc.get("lang") == "en" and len(doc.xpath("//h1")) == 1
    assert [h.text_content() for h in doc.xpath("//h2")] == [s.title for s in HARD_DAY]
    credit = doc.xpath("//article[@id='story-2']//img/following-sibling::p[1]")[0]
    assert credit.text_content() == 'Image copyright: Photo "Agency" <AP>'
    assert not doc.xpath("//script | //b | //em")


def test_a_credit_without_an_image_sits_under_the_title():
    seed = read_stories([SEED])[0]
    doc = lxml.html.document_fromstring(page_of([seed]))
    after_title = doc.xpath("//h2/following-sibling::p[1]")[0].text_content()
    assert after_title == f"Image copyright: {seed.image_credit}"


DAYS = ("2024-05-01", "2024-05-02", "2024-05-03")


@pytest.fixture
def archive(cli, settings):
    for day in DAYS:
        assert cli("stories", "import", str(SEED), "--date", day).exit_code == 0
        assert cli("send", "--date", day).exit_code == 0
    return create_app(settings).test_client()


def test_the_archive_lists_editions_by_date_with_their_titles(archive):
    page = archive.get("/archive")
    doc = lxml.html.document_fromstring(page.text)
    dates = doc.xpath("//ol[@class='editions']/li//time/@datetime")
    assert dates == sorted(DAYS, reverse=True)
    assert doc.xpath("//ol[@class='editions']/li[1]//ul/li/text()") == [
        "Israel-Turkey Relaunch Defense, Security Ties"]
    assert doc.xpath("//ol[@class='editions']/li[1]//a/@href") == ["/archive/2024-05-03"]
    assert "Wednesday, 1 May 2024" in page.text
    assert doc.xpath("//meta[@property='og:title']/@content") == ["Past editions · The Daily Spin"]
    assert doc.xpath("//link[@type='application/atom+xml']/@href") == ["/feed.xml"]


def test_an_archive_page_previews_well_when_shared(archive, settings):
    page = archive.get(f"/archive/{DAYS[0]}")
    doc = lxml.html.document_fromstring(page.text)
    og = {m.get("property"): m.get("content") for m in doc.xpath("//meta[@property]")}
    assert og["og:title"].startswith("The Daily Spin — 1 May 2024: Israel-Turkey")
    assert og["og:description"] == "Israel-Turkey Relaunch Defense, Security Ties"
    assert og["og:url"] == f"{settings.base_url}/archive/{DAYS[0]}"
    assert doc.xpath("//link[@type='application/atom+xml']/@href") == [
        f"{settings.base_url}/feed.xml"]
    assert doc.xpath("//article/@id") == ["story-1"]


def test_the_feed_is_atom_with_the_last_editions(archive, settings):
    answer = archive.get("/feed.xml")
    assert answer.status_code == 200 and answer.mimetype == "application/atom+xml"
    feed = feedparser.parse(answer.data)
    assert not feed.bozo and feed.version == "atom10"
    assert feed.feed.title == "The Daily Spin"
    assert [e.link for e in feed.entries] == [f"{settings.base_url}/archive/{d}"
                                              for d in sorted(DAYS, reverse=True)]
    entry = feed.entries[0]
    assert entry.title.startswith("The Daily Spin — 3 May 2024")
    assert entry.summary == "Israel-Turkey Relaunch Defense, Security Ties"
    assert entry.id == entry.link and entry.published_parsed and feed.feed.updated_parsed


def test_the_feed_keeps_the_last_30_editions(cli, settings):
    first = dt.date(2024, 1, 1)
    for i in range(32):
        day = (first + dt.timedelta(days=i)).isoformat()
        assert cli("stories", "import", str(SEED), "--date", day).exit_code == 0
        assert cli("send", "--date", day).exit_code == 0
    feed = feedparser.parse(create_app(settings).test_client().get("/feed.xml").data)
    links = [e.link.rsplit("/", 1)[1] for e in feed.entries]
    assert len(links) == 30 and links[0] == "2024-02-01" and links[-1] == "2024-01-03"
