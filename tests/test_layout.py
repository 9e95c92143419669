"""The edition in headless Chromium, as readers see it on a desktop and on a phone."""

from __future__ import annotations

import pytest

from newsletter.render.edition import render_edition
from newsletter.render.screenshots import DESKTOP_WIDTH, PHONE_WIDTH, chromium, open_page
from newsletter.stories.imports import read_stories
from tests.conftest import SAMPLES
from tests.test_rendering import AWKWARD, DAY, LONG, story, values

pytestmark = pytest.mark.browser

FOUR = story("Four sides", ("Narrative A", "Narrative B", "Narrative C", "Cynical narrative"))
STORIES = (FOUR, *AWKWARD)

# Label boxes of one story's narratives, in document order.
LABELS = """title => {
  const h2 = [...document.querySelectorAll('h2')].find(h => h.textContent === title);
  const next = [...document.querySelectorAll('h2')][[...document.querySelectorAll('h2')]
               .indexOf(h2) + 1];
  return [...document.querySelectorAll('h4')]
    .filter(h => h2.compareDocumentPosition(h) & Node.DOCUMENT_POSITION_FOLLOWING)
    .filter(h => !next || (h.compareDocumentPosition(next) & Node.DOCUMENT_POSITION_FOLLOWING))
    .map(h => { const r = h.getBoundingClientRect(); return {x: r.left, y: r.top}; });
}"""

# WCAG 2 contrast of every visible element with its own text against the first opaque
# background behind it.
CONTRASTS = """() => {
  const rgba = c => { const p = c.match(/[\\d.]+/g).map(Number); return p.length > 3 ? p
                      : [...p, 1]; };
  const lum = c => { const f = v => (v /= 255) <= 0.03928 ? v / 12.92
                                     : Math.pow((v + 0.055) / 1.055, 2.4);
                     return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const behind = el => { for (; el; el = el.parentElement) {
      const c = rgba(getComputedStyle(el).backgroundColor); if (c[3] > 0) return c; }
    return null; };
  return [...document.body.querySelectorAll('*')]
    .filter(el => [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim()))
    .filter(el => el.getClientRects().length > 0)
    .map(el => { const bg = behind(el);
      const [a, b] = [lum(rgba(getComputedStyle(el).color)), bg ? lum(bg) : -1];
      return {text: el.textContent.trim().slice(0, 40), background: !!bg,
              ratio: (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05)}; });
}"""


SAMPLE_SETTINGS = {"_env_file": None, "postal_address": "1 Test Street, Testville"}

# Words (runs of letters and digits) whose letters sit on more than one line: a word split
# by the layout. A line may still end after a hyphen or other punctuation, as the Unicode
# line-breaking rules allow; links may break (a long URL must), and so may a token too wide
# for its column on any line (code, a URL in the text), never a word that would fit.
SPLIT_WORDS = """(blocks = '.ds-narrative, .ds-story') => {
  const lines = (node, start, end) => {
    const range = document.createRange();
    range.setStart(node, start); range.setEnd(node, end);
    const rects = [...range.getClientRects()].filter(r => r.width > 0);
    return {count: new Set(rects.map(r => Math.round(r.bottom))).size,
            width: rects.reduce((sum, r) => sum + r.width, 0)};
  };
  const split = [];
  for (const block of document.querySelectorAll(blocks)) {
    const walker = document.createTreeWalker(block, NodeFilter.SHOW_TEXT);
    for (let node; (node = walker.nextNode());) {
      if (node.parentElement.closest('a')) continue;
      for (const token of node.data.matchAll(/\\S+/g)) {
        const at = token.index;
        if (lines(node, at, at + token[0].length).width > block.clientWidth) continue;
        for (const word of token[0].matchAll(/[\\p{L}\\p{M}\\p{N}]+/gu)) {
          const start = at + word.index;
          if (lines(node, start, start + word[0].length).count > 1) split.push(word[0]);
        }
      }
    }
  }
  return split;
}"""

NARRATIVES = """() => [...document.querySelectorAll('.ds-narrative')].map(n => {
  const r = n.getBoundingClientRect();
  return {label: n.querySelector('h4').textContent, width: r.width, height: r.height};
})"""


def render_day(stories, **settings):
    from newsletter.settings import load_settings

    edition = render_edition(stories, date=DAY, settings=load_settings(**SAMPLE_SETTINGS,
                                                                       **settings))
    return edition.personalise(values())[0]


@pytest.fixture(scope="module")
def html():
    return render_day(STORIES)


@pytest.fixture(scope="module", params=["samples", "hard day"])
def day(request) -> str:
    """The shipped samples, and a day with five narratives, a 600-word one and RTL text."""
    return render_day(read_stories([SAMPLES]) if request.param == "samples" else STORIES)


@pytest.fixture(scope="module")
def browser(chromium_path):
    with chromium(chromium_path) as browser:
        yield browser


def test_desktop_pairs_the_narratives_of_a_story(browser, html):
    with open_page(browser, html, DESKTOP_WIDTH) as page:
        four = page.evaluate(LABELS, "Four sides")
        five = page.evaluate(LABELS, "Five narratives")
    for boxes, shape in ((four, [2, 2]), (five, [2, 2, 1])):
        rows = sorted({round(b["y"]) for b in boxes})
        assert [sum(round(b["y"]) == y for b in boxes) for y in rows] == shape
        for y in rows:  # left to right within a row
            xs = [b["x"] for b in boxes if round(b["y"]) == y]
            assert xs == sorted(xs)
        assert four[1]["x"] - four[0]["x"] > 250


def test_every_narrative_column_is_wide_and_no_word_is_split(browser, day):
    with open_page(browser, day, DESKTOP_WIDTH) as page:
        narratives = page.evaluate(NARRATIVES)
        split = page.evaluate(SPLIT_WORDS)
    assert len(narratives) >= 15
    narrow = [n for n in narratives if n["width"] < 240]
    assert not narrow
    assert not split


def test_no_narrative_is_taller_than_a_screenful_or_two(browser, day):
    with open_page(browser, day, DESKTOP_WIDTH) as page:
        tallest = max(n["height"] for n in page.evaluate(NARRATIVES))
        desktop = page.evaluate("document.documentElement.scrollHeight")
    with open_page(browser, day, PHONE_WIDTH) as page:
        phone = page.evaluate("document.documentElement.scrollHeight")
        assert not page.evaluate(SPLIT_WORDS)
    assert tallest <= 1500
    assert desktop <= phone


def test_a_long_narrative_links_to_the_whole_of_it_on_the_web(browser, html):
    with open_page(browser, html, DESKTOP_WIDTH) as page:
        links = page.evaluate("""() => [...document.querySelectorAll('.ds-narrative a')]
            .map(a => ({text: a.textContent, href: a.getAttribute('href'),
                        label: a.closest('.ds-narrative').querySelector('h4').textContent}))""")
    number = STORIES.index(LONG) + 1
    assert links == [{"text": "Read the whole narrative", "label": label,
                      "href": f"{values()['webview_url']}#story-{number}"}
                     for label in ("Short", "Long")]  # both 600 words long


def test_the_image_credit_sits_under_the_title_or_the_image(browser, day):
    with open_page(browser, day, DESKTOP_WIDTH) as page:
        credits = page.evaluate("""() => [...document.querySelectorAll('.ds-credit')].map(c => {
            const story = c.closest('.ds-story'), r = c.getBoundingClientRect();
            const above = story.querySelector('img') || story.querySelector('h2');
            return {text: c.textContent, visible: r.height > 0,
                    below: above.getBoundingClientRect().bottom <= r.top,
                    beforeFacts: r.bottom <= story.querySelector('h3').getBoundingClientRect().top};
        })""")
    assert credits and all(c["visible"] and c["below"] and c["beforeFacts"] for c in credits)
    assert all(c["text"].startswith("Image copyright: ") for c in credits)


def test_phone_stacks_them_with_no_sideways_scrolling(browser, html):
    with open_page(browser, html, PHONE_WIDTH) as page:
        for title in ("Four sides", "Five narratives"):
            boxes = page.evaluate(LABELS, title)
            ys = [b["y"] for b in boxes]
            assert ys == sorted(ys) and len(set(ys)) == len(ys), title
            assert max(b["x"] for b in boxes) - min(b["x"] for b in boxes) < 2
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE_WIDTH


def test_the_page_renders_in_standards_mode(browser, html):
    with open_page(browser, html, DESKTOP_WIDTH) as page:
        assert page.evaluate("document.compatMode") == "CSS1Compat"


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_text_is_readable_in_light_and_dark_mode(browser, html, scheme):
    with open_page(browser, html, DESKTOP_WIDTH, color_scheme=scheme) as page:
        texts = page.evaluate(CONTRASTS)
        body = page.evaluate("getComputedStyle(document.body).backgroundColor")
    assert len(texts) > 50
    poor = [t for t in texts if not t["background"] or t["ratio"] < 4.5]
    assert not poor
    assert (body == "rgb(18, 18, 18)") == (scheme == "dark")


def test_right_to_left_text_runs_right_to_left(browser, html):
    with open_page(browser, html, PHONE_WIDTH) as page:
        direction = page.evaluate("""() => [...document.querySelectorAll('p')]
            .filter(p => p.textContent.includes('فقرة عربية'))
            .map(p => getComputedStyle(p).direction)""")
    assert direction and set(direction) == {"rtl"}
