"""The edition in headless Chromium, as readers see it on a desktop and on a phone."""

from __future__ import annotations

import pytest

from newsletter.render.edition import render_edition
from newsletter.render.screenshots import DESKTOP_WIDTH, PHONE_WIDTH, chromium, open_page
from tests.test_rendering import AWKWARD, DAY, story, values

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


@pytest.fixture(scope="module")
def html():
    from newsletter.settings import load_settings

    settings = load_settings(_env_file=None, postal_address="1 Test Street, Testville")
    return render_edition(STORIES, date=DAY, settings=settings).personalise(values())[0]


@pytest.fixture(scope="module")
def browser(chromium_path):
    with chromium(chromium_path) as browser:
        yield browser


def test_desktop_puts_the_narratives_of_a_story_side_by_side(browser, html):
    with open_page(browser, html, DESKTOP_WIDTH) as page:
        boxes = page.evaluate(LABELS, "Four sides")
        assert len(boxes) == 4
        assert max(b["y"] for b in boxes) - min(b["y"] for b in boxes) < 2
        assert [b["x"] for b in boxes] == sorted(b["x"] for b in boxes)
        assert boxes[-1]["x"] - boxes[0]["x"] > 300
        five = page.evaluate(LABELS, "Five narratives")
        first, second = five[:3], five[3:]
        assert len({round(b["y"]) for b in first}) == 1
        assert len({round(b["y"]) for b in second}) == 1
        assert second[0]["y"] > first[0]["y"] and second[0]["x"] < first[1]["x"]


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
