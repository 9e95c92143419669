"""Rendering an edition: what a reader would see in each part, with awkward stories."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

import lxml.html
import pytest

from newsletter.render.edition import RenderedEdition, render_edition
from newsletter.render.emails import environment, rows
from newsletter.render.inline import inline_css, mjml_to_html
from newsletter.render.size_budget import measuring_values
from newsletter.settings import load_settings
from newsletter.stories.data import NarrativeData, SourceData, StoryData
from newsletter.stories.imports import read_stories
from tests.conftest import SAMPLES
from tests.editions import ordinary_day

DAY = dt.date(2026, 11, 25)
TRAPS = ("<b>bold</b> & &amp; <script>alert(1)</script> {{ 7 * 7 }} {% if x %}y{% endif %} "
         "%recipient.name% *|UNSUB|* -unsubscribe- </mj-text><mj-button>x</mj-button>")
WORDS = " ".join(f"word{i}" for i in range(600))


def story(title: str, labels: tuple[str, ...] = ("A", "B", "C", "D"), text: str = "Plain.",
          **extra) -> StoryData:
    return StoryData(title=title, facts=(f"A fact about {title}.",),
                     narratives=tuple(NarrativeData(label, f"{label}: {text}")
                                      for label in labels), **extra)


HTMLISH = StoryData(
    title='Markup <i>in</i> a "title" & more', facts=(TRAPS,),
    narratives=(NarrativeData("<em>Label</em> {{ label }}", TRAPS + "\n\nSecond paragraph."),
                NarrativeData("Other", "Plain.")),
    sources=(SourceData("javascript:alert(1)", "Bad <link>"),
             SourceData("https://example.com/a?x=1&y=2", "Fine & dandy")),
    image_url="https://img.example.com/p.jpg?a=1&b=2", image_credit='Photo "Agency" <AP>')
RTL = story("مرحبا بالعالم", ("السرد الأول", "נרטיב שני"), "هذه فقرة عربية. זו פסקה בעברית.")
FIVE = story("Five narratives", ("One", "Two", "Three", "Four", "Five"))
LONG = story("A long narrative", ("Short", "Long"), WORDS)
EMOJI = story("Emoji 🗞️ news 😀", ("Happy 😀", "Sad 😢"), "Flags 🇺🇦🇮🇱 and ZWJ 👩‍👩‍👧.")
LONG_URL = story("A long link", ("A", "B"), sources=(
    SourceData("https://example.com/" + "a" * 300),))
AWKWARD = (HTMLISH, RTL, FIVE, LONG, EMOJI, LONG_URL)


@pytest.fixture(scope="module")
def settings():
    return load_settings(_env_file=None, postal_address="1 Test Street, Testville",
                         base_url="https://news.example.org")


@pytest.fixture(scope="module")
def samples():
    """The sample stories shipped for the demo."""
    return read_stories([SAMPLES])


@pytest.fixture(scope="module")
def ordinary():
    return ordinary_day()


def values(email: str = "o'brien&co@example.org") -> dict[str, str]:
    return {"email": email, "unsubscribe_url": "https://news.example.org/unsubscribe/t?a=1&b=2",
            "preferences_url": "https://news.example.org/preferences/t",
            "webview_url": "https://news.example.org/archive/2026-11-25"}


def reader_view(edition: RenderedEdition, **kw) -> tuple[lxml.html.HtmlElement, str]:
    html, text = edition.personalise(values(**kw))
    return lxml.html.document_fromstring(html), text


def visible_text(doc) -> str:
    return " ".join(doc.body.text_content().split())


def test_story_text_is_text_in_both_parts(settings):
    edition = render_edition([HTMLISH], date=DAY, settings=settings)
    doc, text = reader_view(edition)
    shown = visible_text(doc)
    for literal in (TRAPS, 'Markup <i>in</i> a "title" & more', "<em>Label</em> {{ label }}",
                    "Bad <link>", 'Photo "Agency" <AP>'):
        assert " ".join(literal.split()) in shown
        assert literal in text
    assert not doc.xpath("//script | //b | //em | //i | //mj-button")
    assert "49" not in shown  # {{ 7 * 7 }} was not evaluated
    html = edition.html.fill(values())
    assert "<mj-" not in html


def test_only_web_links_become_links(settings):
    doc, _ = reader_view(render_edition([HTMLISH], date=DAY, settings=settings))
    hrefs = doc.xpath("//a/@href")
    assert "https://example.com/a?x=1&y=2" in hrefs
    assert not [h for h in hrefs if h.startswith("javascript")]
    assert doc.xpath("//img/@src") == ["https://img.example.com/p.jpg?a=1&b=2"]
    assert doc.xpath("//img/@alt") == [HTMLISH.title]


def test_awkward_stories_arrive_whole_in_both_parts(settings):
    doc, text = reader_view(render_edition(AWKWARD, date=DAY, settings=settings))
    shown = visible_text(doc)
    for s in AWKWARD:
        for words in (s.title, *s.facts, *(n.label for n in s.narratives),
                      *(p for n in s.narratives for p in n.text.split("\n\n"))):
            assert " ".join(words.split()) in shown
            assert words in text
    assert WORDS in text and "👩‍👩‍👧" in shown


def test_text_part_has_every_word_and_no_markup(settings, samples):
    edition = render_edition(samples, date=DAY, settings=settings)
    text = edition.text.fill(values("reader@example.org"))
    for s in samples:
        assert s.title in text
        for fact in s.facts:
            assert fact in text
        for narrative in s.narratives:
            assert narrative.label in text
            for paragraph in narrative.text.split("\n\n"):
                assert paragraph.strip() in text
        for source in s.sources:
            assert source.url in text
    assert not re.search(r"<[a-z/!]|&[a-z#0-9]+;", text)
    assert "Unsubscribe: https://news.example.org/unsubscribe/t?a=1&b=2" in text
    assert "1 Test Street, Testville" in text


def test_footer_shows_why_how_to_leave_and_where_we_are(settings):
    doc, _ = reader_view(render_edition([story("One")], date=DAY, settings=settings))
    links = {a.text_content(): a.get("href") for a in doc.xpath("//a")}
    assert links["Unsubscribe"] == values()["unsubscribe_url"]
    assert links["Preferences"] == values()["preferences_url"]
    assert links["View in browser"] == values()["webview_url"]
    shown = visible_text(doc)
    assert "because o'brien&co@example.org subscribed to The Daily Spin" in shown
    assert "1 Test Street, Testville" in shown
    assert shown.index("One") < shown.index("Unsubscribe")


def test_no_postal_address_leaves_no_trace(settings):
    bare = settings.model_copy(update={"postal_address": None})
    doc, text = reader_view(render_edition([story("One")], date=DAY, settings=bare))
    assert "None" not in visible_text(doc) and "None" not in text


def test_the_edition_is_slotted_once_for_every_recipient(settings):
    edition = render_edition([story("One")], date=DAY, settings=settings)
    assert set(edition.html.slots) == {"email", "unsubscribe_url", "preferences_url",
                                       "webview_url"}
    assert set(edition.text.slots) == set(edition.html.slots)
    a, b = edition.personalise(values("a@example.org")), edition.personalise(values())
    assert "a@example.org" in a[0] and "a@example.org" not in b[0]
    assert "slotzz" not in a[0] + a[1]


def test_subject_and_preheader(settings, ordinary):
    edition = render_edition(ordinary, date=DAY, settings=settings)
    assert edition.subject == ("The Daily Spin — 25 Nov 2026: Israel-Turkey Relaunch Defense, "
                               "Security Ties (0)")
    assert edition.preheader.startswith("Israel-Turkey Relaunch")
    assert len(edition.preheader) <= 142
    doc, _ = reader_view(edition)
    hidden = doc.body.xpath(".//div[contains(@style, 'display:none')]")[0]
    assert hidden.text_content() == edition.preheader
    multiline = dataclasses.replace(ordinary[0], title="Two\nlines")
    assert "\n" not in render_edition([multiline], date=DAY, settings=settings).subject


def test_json_round_trip(settings):
    edition = render_edition(AWKWARD, date=DAY, settings=settings)
    assert RenderedEdition.from_json(json.loads(json.dumps(edition.to_json()))) == edition


@pytest.mark.parametrize(("count", "shape"), [(2, [2]), (4, [4]), (5, [3, 2]), (6, [3, 3]),
                                              (8, [4, 4]), (9, [3, 3, 3])])
def test_narratives_wrap_in_balanced_rows_of_four_at_most(count, shape):
    assert [len(r) for r in rows(list(range(count)))] == shape


@pytest.mark.parametrize("which", ["ordinary", "samples"])
def test_ordinary_edition_fits_the_budget_whole(settings, which, request):
    stories = request.getfixturevalue(which)
    edition = render_edition(stories, date=DAY, settings=settings)
    assert edition.shrunk == 0
    assert edition.html_size < settings.size_budget_kb * 1000
    filled = edition.html.fill_html(measuring_values())
    assert len(filled.encode()) == edition.html_size


def test_an_oversized_day_shrinks_its_last_stories(settings, ordinary):
    day = [dataclasses.replace(s, title=f"{s.title} ({i})", narratives=tuple(
        NarrativeData(n.label, f"Day story {i}. {n.text}") for n in s.narratives))
        for i, s in enumerate(ordinary * 2)]
    edition = render_edition(day, date=DAY, settings=settings)
    assert 0 < edition.shrunk < len(day)
    assert edition.html_size <= settings.size_budget_kb * 1000
    doc, text = reader_view(edition)
    shown = visible_text(doc)
    last = day[-1]
    assert last.title in shown and last.facts[0] in shown
    assert last.narratives[0].text.split("\n\n")[0] not in shown
    assert f"{values()['webview_url']}#story-{len(day)}" in doc.xpath("//a/@href")
    assert "Unsubscribe" in shown  # the footer survives
    assert last.narratives[0].text.split("\n\n")[0] in text  # the text part stays whole
    whole = render_edition(day, date=DAY, settings=settings, web=True)
    assert whole.shrunk == 0 and whole.html_size > edition.html_size


def test_a_tiny_budget_shrinks_every_story_and_still_renders(settings, ordinary):
    tiny = settings.model_copy(update={"size_budget_kb": 10})
    edition = render_edition(ordinary, date=DAY, settings=tiny)
    assert edition.shrunk == len(ordinary)


def test_inlining_keeps_doctype_mso_comments_and_dark_mode(settings):
    stories = (*AWKWARD, story("Four"))
    context = {"title": "t", "stories": stories, "preheader": "p", "date_long": "d", "web": False,
               "full_count": len(stories), "list_name": "L", "postal_address": None,
               "base_url": "https://x", **{k: k for k in measuring_values()}}
    raw = mjml_to_html(environment().get_template("edition.mjml.j2").render(context))
    html = inline_css(raw)
    assert html.startswith("<!DOCTYPE html>")
    for comment in ("<!--[if mso | IE]>", "<![endif]-->", "<!--[if mso]>", "<!--[if !mso]>"):
        assert html.count(comment) == raw.count(comment) > 0
    assert "@media (prefers-color-scheme: dark)" in html
    assert "width:25% !important" in html  # the column media query kept its !important
    doc = lxml.html.document_fromstring(html)
    h2 = doc.xpath("//h2")[0]
    assert "font-size:22px" in h2.get("style").replace(" ", "")
    assert not [s for s in doc.xpath("//@style") if "!important" in s]
    assert doc.get("lang") == "en"
    assert all(t.get("role") == "presentation" for t in doc.xpath("//table"))
