"""A story written back in the house text format (and JSON), for the editors' desk and
`stories export`: parse_text(render_text(story)) == story for every story the text format
can hold.

The text format cannot hold everything JSON can (a fact line that starts like a bullet, a
paragraph that reads like a narrative heading, a label ending like a sentence...), so
`text_mismatch` says where a story written back would come back different, and callers
choose: warn the editor (the desk) or write JSON instead (export).
"""

from __future__ import annotations

import json
from itertools import zip_longest

from newsletter.errors import StoryFormatError
from newsletter.stories.data import StoryData
from newsletter.stories.parse import parse_text

BULLET = "•"


def render_text(story: StoryData) -> str:
    """The story as an editor would paste it: blank lines around every heading and paragraph,
    which is the layout the parser reads most safely (see README, Story files)."""
    lines = [story.title]
    if story.image_credit is not None:
        lines.append(f"Image copyright: {story.image_credit}")
    if story.image_url:
        lines.append(f"Image: {story.image_url}")
    lines += ["", "The Facts", ""]
    for fact in story.facts:
        first, *rest = fact.split("\n")
        lines.append(f"  {BULLET} {first}")
        lines += [f"    {line}" for line in rest]  # a continuation line of the same fact
    lines += ["", "The Spin"]
    for narrative in story.narratives:
        lines += ["", narrative.label, "", narrative.text]
    if story.sources:
        lines += ["", "Articles on this story", ""]
        lines += [f"{s.label} — {s.url}" if s.label else s.url for s in story.sources]
    return "\n".join(lines) + "\n"


def render_json(story: StoryData) -> str:
    """The story in the JSON import format, which holds any story exactly."""
    data: dict[str, object] = {
        "title": story.title, "facts": list(story.facts),
        "narratives": [{"label": n.label, "text": n.text} for n in story.narratives],
        "sources": [{"label": s.label, "url": s.url} for s in story.sources],
    }
    if story.image_url is not None or story.image_credit is not None:
        data["image"] = {"url": story.image_url, "credit": story.image_credit}
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def text_mismatch(story: StoryData) -> str | None:
    """None when the text format gives this story back exactly; otherwise the first part
    that would change, in words an editor understands (e.g. "fact 2")."""
    try:
        back = parse_text("story", render_text(story))
    except StoryFormatError as err:
        return f"the story as text is refused ({err.reason})"
    parts = [("the title", story.title, back.title),
             ("the image lines", (story.image_url, story.image_credit),
              (back.image_url, back.image_credit))]
    for what, mine, theirs in (("fact", story.facts, back.facts),
                               ("narrative", story.narratives, back.narratives),
                               ("source", story.sources, back.sources)):
        parts += [(f"{what} {n}", a, b)
                  for n, (a, b) in enumerate(zip_longest(mine, theirs), start=1)]
    return next((name for name, a, b in parts if a != b), None)
