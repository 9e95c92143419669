"""Stories written back as text: parse(render_text(story)) == story, and where it cannot be."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from newsletter.errors import StoryFormatError
from newsletter.stories.data import NarrativeData, SourceData, StoryData
from newsletter.stories.imports import read_stories
from newsletter.stories.parse import parse_file, parse_text
from newsletter.stories.text import render_json, render_text, text_mismatch
from tests.conftest import SAMPLES
from tests.test_rendering import AWKWARD, TRAPS
from tests.test_story_parser import FIVE

SAMPLE_STORIES = read_stories([SAMPLES])
TRICKY = StoryData(
    title="{{ title }} %recipient.name% *|UNSUB|* <script>alert(1)</script> שלום",
    facts=(TRAPS, "A fact written\non two lines", "- starts with a dash after the bullet",
           "مرحبا بالعالم؟"),
    narratives=(NarrativeData("Pro-{{ x }} narrative", "One.\n\nTwo {% raw %}.\nThird line."),
                NarrativeData("السرد الأول", "هذه فقرة عربية. זו פסקה בעברית."),
                NarrativeData("*|UNSUB|*", "%recipient.x% -unsubscribe- 😀 👩‍👩‍👧.")),
    sources=(SourceData("https://example.org/a?x=1&y=2", "Label: with — dashes & <b>"),
             SourceData("https://example.net/bare")),
    image_url="https://img.example.com/p.jpg?a=1&b=2", image_credit="")


def back(story: StoryData) -> StoryData:
    return parse_text("story.txt", render_text(story))


@pytest.mark.parametrize("story", [*SAMPLE_STORIES, *parse_file("five.txt", FIVE.encode()),
                                   *AWKWARD[1:], TRICKY],
                         ids=lambda s: s.title[:30])
def test_text_round_trips(story):
    assert back(story) == story
    assert text_mismatch(story) is None


def test_the_seed_written_back_reads_like_the_seed():
    text = render_text(SAMPLE_STORIES[0])
    assert text.startswith("Israel-Turkey Relaunch Defense, Security Ties\nImage copyright: ")
    assert "\nThe Facts\n\n  • Israeli Defense Minister" in text
    assert "\nThe Spin\n\nNarrative A\n\nRestoring defense ties" in text
    assert "Articles on this story" not in text  # the seed has none


def test_sources_and_the_image_are_written_as_the_format_documents():
    text = render_text(TRICKY)
    assert "\nImage copyright: \nImage: https://img.example.com/p.jpg?a=1&b=2\n" in text
    assert text.endswith("\n\nArticles on this story\n\n"
                         "Label: with — dashes & <b> — https://example.org/a?x=1&y=2\n"
                         "https://example.net/bare\n")


def test_every_story_the_parser_reads_round_trips():
    """Stories made at random from the format's awkward parts: whatever the parser accepts
    comes back unchanged from its text."""
    pieces = ["Narrative A", "Cynical narrative", "Pro side", "short", "The Spin is here.",
              "A sentence.", "{{ x }}", "*|UNSUB|*", "%recipient.x%", "- dash", "• bullet",
              "שלום עולם", "مرحبا؟", "Sources", "label — https://example.org/x", "Image: x",
              "two words", "ends with a comma,", "https://example.com/bare"]
    rng = random.Random(19)
    checked = 0
    for _ in range(400):
        lines = ["Title " + rng.choice(pieces), "", "The Facts", "- " + rng.choice(pieces)]
        lines += rng.choices(pieces, k=rng.randint(0, 2))
        lines += ["", "The Spin", ""]
        for _ in range(rng.randint(1, 8)):
            lines.append(rng.choice(pieces))
            lines += [""] * rng.randint(0, 1)
        if rng.random() < 0.3:
            lines += ["", "Articles on this story", "S — https://example.org/s"]
        try:
            story = parse_text("random.txt", "\n".join(lines))
        except StoryFormatError:
            continue
        assert back(story) == story, "\n".join(lines)
        checked += 1
    assert checked > 100  # the generator must make mostly valid stories to prove anything


@pytest.mark.parametrize(("change", "where"), [
    ({"facts": ("one\n- two",)}, "fact 1"),
    ({"facts": ("one\n\ntwo",)}, "fact 1"),
    ({"narratives": (NarrativeData("Ends like a sentence.", "Text."),)}, "refused"),
    ({"narratives": (NarrativeData("A", "First.\n\nShort heading\n\nLast."),)},
     "narrative 1"),
    ({"sources": (SourceData("ftp://example.org/x", "Old"),)}, "refused"),
    ({"sources": (SourceData("https://example.org/x", ""),)}, "source 1"),
    ({"image_credit": " padded "}, "the image lines"),
    ({"title": "Two\nlines"}, "refused"),
])
def test_what_the_text_format_cannot_hold_is_named(change, where):
    story = dataclasses.replace(SAMPLE_STORIES[1], **change)
    assert where in text_mismatch(story)


def test_json_holds_any_story_exactly():
    for story in (*AWKWARD[1:], TRICKY, dataclasses.replace(TRICKY, facts=("one\n- two",))):
        [again] = parse_file("story.json", render_json(story).encode())
        assert again == story
    assert json.loads(render_json(AWKWARD[1]))["title"] == "مرحبا بالعالم"  # not \u-escaped
