"""The story text and JSON formats: what imports exactly, and what is refused, where, and why."""

import json

import pytest

from newsletter.errors import StoryFormatError
from newsletter.stories.parse import parse_file
from tests.conftest import SEED

FIVE = """Fictional: Five Views of a Bridge

The Facts

- The council of Lower Wexmoor voted 5-4 to build a bridge.
* Work starts in spring.

The Spin

Narrative A

A bridge at last.

Narrative B

Too costly.

Narrative C

Too late.

Pro-ferry narrative

The ferry was fine, and it had a café.

Cynical narrative

Elections are coming.

Articles on this story

Wexmoor Gazette — https://example.org/bridge
Council minutes: https://example.org/minutes?id=4&x=1
https://example.net/bare
"""


def parse(text: str | bytes, name: str = "story.txt"):
    data = text if isinstance(text, bytes) else text.encode()
    return parse_file(name, data)


def test_seed_story_parses_exactly():
    [story] = parse(SEED.read_bytes(), str(SEED))
    assert story.title == "Israel-Turkey Relaunch Defense, Security Ties"
    assert story.image_credit == "Israel's Defense Ministry [via The Times of Israel]"
    assert len(story.facts) == 2
    assert story.facts[0].startswith("Israeli Defense Minister Benny Gantz announced")
    assert [n.label for n in story.narratives] == [
        "Narrative A", "Narrative B", "Narrative C", "Cynical narrative"]
    assert "Erdoğan will need" in story.narratives[2].text
    assert story.narratives[3].text.endswith("attempt to win public sentiment.")
    assert "Sign up" not in " ".join(n.text for n in story.narratives)
    assert story.sources == ()


def test_five_narratives_any_labels_and_sources():
    [story] = parse(FIVE)
    assert [n.label for n in story.narratives][3:] == ["Pro-ferry narrative", "Cynical narrative"]
    assert story.facts == ("The council of Lower Wexmoor voted 5-4 to build a bridge.",
                           "Work starts in spring.")
    assert [(s.label, s.url) for s in story.sources] == [
        ("Wexmoor Gazette", "https://example.org/bridge"),
        ("Council minutes", "https://example.org/minutes?id=4&x=1"),
        (None, "https://example.net/bare")]


def test_crlf_with_bom_equals_lf():
    lf = parse(FIVE)
    crlf = parse(b"\xef\xbb\xbf" + FIVE.replace("\n", "\r\n").encode())
    assert crlf == lf


def test_text_is_kept_as_written():
    awkward = ("<b>bold</b> & {{ config }} {% if x %} %recipient.name% *|UNSUB|* "
               "-unsubscribe- مرحبا بالعالم שלום 😀")
    text = FIVE.replace("A bridge at last.", awkward).replace(
        "Fictional: Five Views of a Bridge", "<script>alert(1)</script> {{ title }}")
    [story] = parse(text)
    assert story.narratives[0].text == awkward
    assert story.title == "<script>alert(1)</script> {{ title }}"


def test_long_narrative_and_several_paragraphs():
    long = " ".join(["word"] * 599) + " end."
    text = FIVE.replace("Too costly.", long + "\n\nA second paragraph.")
    [story] = parse(text)
    assert story.narratives[1].text == long + "\n\nA second paragraph."


@pytest.mark.parametrize(("text", "line", "expected"), [
    ("", None, "empty"),
    ("\n\n  \n", None, "empty"),
    ("The Facts\n\n- a fact\n", 1, "expected a title"),
    ("Title\n\nThe Spin\n\nNarrative A\n\nText.\n", 3, "expected 'The Facts'"),
    ("Title\n\nThe Facts\n\nnot a bullet\n", 5, "expected a fact as a bullet"),
    ("Title\n\nThe Facts\n\nThe Spin\n\nNarrative A\n\nText.\n", 5, "at least one fact"),
    ("Title\n\nThe Facts\n\n- fact\n", 6, "expected 'The Spin'"),
    ("Title\n\nThe Facts\n\n- fact\n\nThe Spin\n", 8, "at least one narrative"),
    ("Title\n\nThe Facts\n\n- fact\n\nThe Spin\n\nNarrative A\n\nNarrative B\n\nText.\n", 9,
     "'Narrative A' has no text"),
    ("Title\n\nThe Facts\n\n- fact\n\nThe Spin\n\nNarrative A\n", 9, "has no text"),
    ("Title\n\nThe Facts\n\n- fact\n\nThe Spin\n\nJust a paragraph that reads like one.\n", 9,
     "expected a narrative heading"),
    ("Title\n\nThe Facts\n\n- f\n\nThe Spin\n\nA\n\nT.\n\nArticles on this story\n\nno url\n",
     15, "ending in a URL"),
])
def test_bad_files_name_file_line_and_expectation(text, line, expected):
    with pytest.raises(StoryFormatError) as caught:
        parse(text, "day/bad.txt")
    err = caught.value
    assert err.path == "day/bad.txt"
    assert err.line == line
    assert expected in str(err)
    assert str(err).startswith("day/bad.txt" + (f":{line}:" if line else ":"))


def test_not_utf8_is_refused_with_its_line():
    with pytest.raises(StoryFormatError, match=r"bad.txt:3: not UTF-8"):
        parse(b"Title\n\nThe Facts \xff\n", "bad.txt")


def test_json_story_and_list():
    story = {"title": "T {{x}}", "image": {"url": "https://example.org/i.jpg", "credit": "Me"},
             "facts": ["one"], "narratives": [{"label": "A", "text": "<i>a</i>"},
                                              {"label": "B", "text": "b"}],
             "sources": [{"label": "S", "url": "https://example.org"}, "https://example.net"]}
    [one] = parse(json.dumps(story), "s.json")
    assert one.title == "T {{x}}" and one.narratives[0].text == "<i>a</i>"
    assert one.image_url == "https://example.org/i.jpg" and one.sources[1].label is None
    assert len(parse(json.dumps({"stories": [story, story]}), "s.json")) == 2


@pytest.mark.parametrize(("data", "expected"), [
    ("{", "s.json:1: not valid JSON"),
    ('{"facts": ["a"], "narratives": [{"label": "A", "text": "t"}]}', '"title"'),
    ('{"title": "T", "facts": [], "narratives": [{"label": "A", "text": "t"}]}', '"facts"'),
    ('{"title": "T", "facts": ["a"], "narratives": [{"label": "A", "text": ""}]}',
     "narrative 1"),
    ('[{"title": "T", "facts": ["a"], "narratives": [{"label": "A", "text": "t"}]}, 3]',
     "story 2"),
])
def test_bad_json_is_refused(data, expected):
    with pytest.raises(StoryFormatError, match=expected.replace("[", r"\[")):
        parse(data, "s.json")


def test_a_narrative_heading_needs_no_blank_line_before_it():
    [story] = parse("Title X\nThe Facts\n- a fact\nThe Spin\nNarrative A\nFirst text.\n"
                    "Narrative B\nSecond text.\n")
    assert [(n.label, n.text) for n in story.narratives] == [
        ("Narrative A", "First text."), ("Narrative B", "Second text.")]


def test_nul_characters_are_refused_with_their_line():
    with pytest.raises(StoryFormatError, match=r"bad.txt:3: contains a NUL"):
        parse(b"Title\n\nThe\x00 Facts\n", "bad.txt")
    with pytest.raises(StoryFormatError, match=r"s.json: contains a NUL"):
        parse('{"title": "T\\u0000", "facts": ["a"], "narratives": []}', "s.json")


@pytest.mark.parametrize("image", ['{"url": 5}', '{"credit": ["a"]}',
                                   '{"url": "javascript:alert(1)"}', '"a string"'])
def test_json_image_must_be_strings_and_an_http_url(image):
    data = ('{"title": "T", "facts": ["a"], "narratives": [{"label": "A", "text": "t"}], '
            f'"image": {image}}}')
    with pytest.raises(StoryFormatError, match='"image"'):
        parse(data, "s.json")


def test_any_label_may_have_its_paragraph_on_the_next_line():
    [story] = parse("Title\n\nThe Facts\n- a fact\n\nThe Spin\nPro side\nThis is good.\n"
                    "Against side\nThis is bad.\n\nالرواية المؤيدة\nهذا جيد؟\n")
    assert [(n.label, n.text) for n in story.narratives] == [
        ("Pro side", "This is good."), ("Against side", "This is bad."),
        ("الرواية المؤيدة", "هذا جيد؟")]


def test_a_hard_wrapped_paragraph_is_not_taken_for_a_heading():
    [story] = parse("Title\n\nThe Facts\n- a fact\n\nThe Spin\n\nNarrative A\n\n"
                    "This may benefit both nations, but it is\nespecially a win for one.\n")
    assert [n.label for n in story.narratives] == ["Narrative A"]
    assert story.narratives[0].text.startswith("This may benefit")


def test_a_short_last_line_stays_in_its_paragraph():
    [story] = parse("Title\n\nThe Facts\n- a fact\n\nThe Spin\n\nNarrative A\n\n"
                    "Quoted in full.\n— Wexmoor Gazette\n")
    assert story.narratives[0].text == "Quoted in full.\n— Wexmoor Gazette"


def test_a_text_file_whose_title_starts_with_a_bracket_is_text():
    text = FIVE.replace("Fictional: Five Views", "[Update] {Five} Views")
    [story] = parse(text, "update.txt")
    assert story.title == "[Update] {Five} Views of a Bridge"
    with pytest.raises(StoryFormatError, match="not valid JSON"):
        parse(text, "update")  # no telling suffix: the content decides
