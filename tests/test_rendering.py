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
from newsletter.render.inline import MSO_ROW, inline_css, mjml_to_html
from newsletter.render.prose import Opening, opening, wrap
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
    return flat(doc.body.text_content())


def flat(text: str) -> str:
    """Words with single spaces: the text part is wrapped, the HTML laid out."""
    return " ".join(text.split())


def test_story_text_is_text_in_both_parts(settings):
    edition = render_edition([HTMLISH], date=DAY, settings=settings)
    doc, text = reader_view(edition)
    shown = visible_text(doc)
    for literal in (TRAPS, 'Markup <i>in</i> a "title" & more', "<em>Label</em> {{ label }}",
                    "Bad <link>", 'Photo "Agency" <AP>'):
        assert " ".join(literal.split()) in shown
        assert flat(literal) in flat(text)
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
    """Whole in the text part; in the HTML, a narrative past NEWSLETTER_NARRATIVE_WORDS
    shows its opening (test_long_narratives_show_their_opening)."""
    doc, text = reader_view(render_edition(AWKWARD, date=DAY, settings=settings))
    shown = visible_text(doc)
    for s in AWKWARD:
        html_words = (p for n in s.narratives
                      for p in opening(n.text, settings.narrative_words).paragraphs)
        for words in (s.title, *s.facts, *(n.label for n in s.narratives), *html_words):
            assert flat(words) in shown
        for words in (s.title, *s.facts, *(n.label for n in s.narratives),
                      *(p for n in s.narratives for p in n.text.split("\n\n"))):
            assert flat(words) in flat(text)
    assert WORDS in flat(text) and "👩‍👩‍👧" in shown
    assert WORDS not in shown and "word599" not in shown


def test_text_part_has_every_word_and_no_markup(settings, samples):
    edition = render_edition(samples, date=DAY, settings=settings)
    text = edition.text.fill(values("reader@example.org"))
    for s in samples:
        assert flat(s.title) in flat(text)
        for fact in s.facts:
            assert flat(fact) in flat(text)
        for narrative in s.narratives:
            assert flat(narrative.label) in flat(text)
            for paragraph in narrative.text.split("\n\n"):
                assert flat(paragraph) in flat(text)
        for source in s.sources:
            assert source.url in text
    assert not re.search(r"<[a-z/!]|&[a-z#0-9]+;", text)
    assert "Unsubscribe:\nhttps://news.example.org/unsubscribe/t?a=1&b=2" in text
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
    assert flat(last.narratives[0].text.split("\n\n")[0]) in flat(text)  # text part: whole
    whole = render_edition(day, date=DAY, settings=settings, web=True)
    page = visible_text(lxml.html.document_fromstring(whole.html.fill({})))
    assert whole.shrunk == 0 and flat(last.narratives[0].text) in page  # the web: whole


def test_a_tiny_budget_shrinks_every_story_and_still_renders(settings, ordinary):
    tiny = settings.model_copy(update={"size_budget_kb": 10})
    edition = render_edition(ordinary, date=DAY, settings=tiny)
    assert edition.shrunk == len(ordinary)


def test_inlining_keeps_doctype_mso_comments_and_dark_mode(settings):
    stories = (*AWKWARD, story("Four"))
    context = {"title": "t", "stories": stories, "preheader": "p", "date_long": "d",
               "full_count": len(stories), "narrative_words": 120, "list_name": "L",
               "postal_address": None, "base_url": "https://x",
               **{k: k for k in measuring_values()}}
    raw = mjml_to_html(environment().get_template("edition.mjml.j2").render(context))
    html = inline_css(raw)
    assert html.startswith("<!DOCTYPE html>")
    for comment in ("<!--[if mso | IE]>", "<![endif]-->", "<!--[if mso]>", "<!--[if !mso]>"):
        assert html.count(comment) == raw.count(comment) > 0
    assert "@media (prefers-color-scheme: dark)" in html
    assert "width:50% !important" in html  # the column media query kept its !important
    doc = lxml.html.document_fromstring(html)
    h2 = doc.xpath("//h2")[0]
    assert "font-size:22px" in h2.get("style").replace(" ", "")
    assert not [s for s in doc.xpath("//@style") if "!important" in s]
    assert doc.get("lang") == "en"
    assert all(t.get("role") == "presentation" for t in doc.xpath("//table"))


def long_lines(text: str) -> list[str]:
    """Lines past 78 columns that are not a URL alone, or with its bullet (RFC 5322 2.1.1)."""
    return [line for line in text.splitlines() if len(line) > 78
            and not re.fullmatch(r" *(\* )?https://\S+", line)]


@pytest.mark.parametrize("which", ["samples", "awkward"])
def test_text_part_is_wrapped_at_78_columns(settings, samples, which):
    stories = samples if which == "samples" else AWKWARD
    text = render_edition(stories, date=DAY, settings=settings).text.fill(values())
    assert not long_lines(text)
    assert max(map(len, text.splitlines())) > 100 or which == "samples"  # the 300-char URL
    for story in stories:
        for narrative in story.narratives:
            assert f"-- {narrative.label} --" in text or which == "awkward"
            # Under its label, each paragraph one block, a blank line between them.
            blocks = "\n\n".join(wrap(p) for p in narrative.text.split("\n\n"))
            assert f" --\n{blocks}\n" in text
        for fact in story.facts:
            assert "\n" + wrap(fact, "  * ") + "\n" in text


def test_wrap_keeps_bullets_hanging_urls_whole_and_right_to_left_text():
    fact = "Word " * 30 + "https://example.com/" + "x" * 100 + " end."
    lines = wrap(fact, "  * ").splitlines()
    assert lines[0].startswith("  * Word") and all(line.startswith("    ") for line in lines[1:])
    assert "    https://example.com/" + "x" * 100 in lines  # alone, whole, however long
    assert max(len(line) for line in lines if "https" not in line) <= 78
    arabic = "هذه فقرة عربية طويلة " * 12
    assert [len(line) <= 78 for line in wrap(arabic).splitlines()] == [True] * 4
    assert flat(wrap(arabic)) == flat(arabic)
    assert wrap("汉字" * 100).splitlines() == ["汉字" * 39, "汉字" * 39, "汉字" * 22]


def test_the_image_credit_is_in_both_parts_for_every_story_that_has_one(settings, samples):
    edition = render_edition([*samples, HTMLISH], date=DAY, settings=settings)
    doc, text = reader_view(edition)
    credited = [s for s in (*samples, HTMLISH) if s.image_credit]
    assert len(credited) >= 6
    shown = [" ".join(p.text_content().split()) for p in doc.xpath("//p[@class]")
             if "ds-credit" in p.get("class")]
    assert shown == [f"Image copyright: {flat(s.image_credit)}" for s in credited]
    for s in credited:  # under the story's title in the text part
        title = wrap(s.title, f"{[*samples, HTMLISH].index(s) + 1}. ")
        credit = wrap(f"Image copyright: {s.image_credit}", "", "  ")
        assert f"{title}\n{'=' * 70}\n{credit}\n" in text
    assert 'Photo "Agency" <AP>' in text  # plain text, not entities


def test_long_narratives_show_their_opening(settings):
    edition = render_edition([LONG], date=DAY, settings=settings)
    doc, text = reader_view(edition)
    shown = visible_text(doc)
    cut = opening(LONG.narratives[1].text, settings.narrative_words)
    assert cut.cut and cut.paragraphs[-1].endswith("\u00a0…")
    assert flat(cut.paragraphs[-1]) in shown and "word200" not in shown
    assert WORDS in flat(text)  # the text part keeps it whole
    wide = settings.model_copy(update={"narrative_words": 1000})
    assert "word599" in visible_text(reader_view(render_edition([LONG], date=DAY,
                                                                settings=wide))[0])


@pytest.mark.parametrize(("text", "words", "shown", "cut"), [
    ("One two three.", 3, ["One two three."], False),
    ("One two. Three four five six.", 3, ["One two."], True),  # ends at the sentence
    ("One two three four five six.", 3, ["One two three\u00a0…"], True),
    ("First para.\n\nSecond one here.", 2, ["First para."], True),
    ("汉" * 300, 20, ["汉" * 140 + "\u00a0…"], True),  # no spaces: cut by characters
])
def test_opening(text, words, shown, cut):
    assert opening(text, words) == Opening(shown, cut)


def test_outlook_gets_the_same_pairs_from_its_tables(settings):
    """Outlook desktop ignores the column CSS and lays out the MSO conditional tables."""
    html = render_edition([FIVE], date=DAY, settings=settings).html.fill(values())
    spin = html[html.index('id="story-1"'):html.index('class="ds-footer')]
    rows = [re.findall(r'<!--\[if mso \| IE\]><td style="vertical-align:top;width:(\d+)px;">',
                       part) for part in spin.split(MSO_ROW)]
    assert rows[:2] == [["288", "288"], ["288", "288"]] and len(rows) == 3
    assert rows[2][0] == "576"  # the fifth spans the row (then the footer's section)
