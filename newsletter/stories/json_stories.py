"""Story files in JSON: one story object, a list of them, or {"stories": [...]}; see the
README, "Story files". Every refusal names the file, the story and what was expected."""

from __future__ import annotations

import json

from newsletter.errors import StoryFormatError
from newsletter.stories.data import NarrativeData, SourceData, StoryData


def parse_json(path: str, text: str) -> list[StoryData]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise StoryFormatError(path, err.lineno, f"not valid JSON: {err.msg}") from None
    if isinstance(data, dict) and "stories" in data:
        data = data["stories"]
    items = data if isinstance(data, list) else [data]
    if not items:
        raise StoryFormatError(path, None, "expected at least one story object")
    return [_story_from_json(path, i, item, len(items) > 1) for i, item in enumerate(items)]


def _story_from_json(path: str, index: int, item: object, many: bool) -> StoryData:
    where = f"story {index + 1}: " if many else ""

    def fail(message: str) -> StoryFormatError:
        return StoryFormatError(path, None, where + message)

    if not isinstance(item, dict):
        raise fail("expected an object with title, facts and narratives")
    if _has_nul(item):
        raise fail("contains a NUL character (\\u0000)")
    title = item.get("title")
    if not isinstance(title, str) or not title.strip():
        raise fail("expected \"title\": a non-empty string")
    facts = item.get("facts")
    if not isinstance(facts, list) or not facts or not all(
            isinstance(f, str) and f.strip() for f in facts):
        raise fail("expected \"facts\": a list of at least one non-empty string")
    narratives = item.get("narratives")
    if not isinstance(narratives, list) or not narratives:
        raise fail("expected \"narratives\": a list of at least one {\"label\", \"text\"}")
    parsed = []
    for n, entry in enumerate(narratives, start=1):
        if not isinstance(entry, dict) or not all(
                isinstance(entry.get(k), str) and entry[k].strip() for k in ("label", "text")):
            raise fail(f"narrative {n}: expected {{\"label\": ..., \"text\": ...}}, both "
                       "non-empty strings")
        parsed.append(NarrativeData(entry["label"].strip(), entry["text"].strip()))
    sources = []
    for n, entry in enumerate(item.get("sources") or [], start=1):
        entry = {"url": entry} if isinstance(entry, str) else entry
        url = entry.get("url") if isinstance(entry, dict) else None
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise fail(f"source {n}: expected an http(s) \"url\"")
        label = entry.get("label")
        sources.append(SourceData(url=url, label=label if isinstance(label, str) else None))
    image = item.get("image") or {}
    if not isinstance(image, dict) or not all(
            isinstance(image.get(k), str | None) for k in ("url", "credit")):
        raise fail("expected \"image\": an object with a \"url\" and/or a \"credit\" string")
    if image.get("url") and not image["url"].startswith(("http://", "https://")):
        raise fail("expected an http(s) \"image\" \"url\"")
    return StoryData(title=title.strip(), facts=tuple(f.strip() for f in facts),
                     narratives=tuple(parsed), sources=tuple(sources),
                     image_url=image.get("url"), image_credit=image.get("credit"), origin=path)


def _has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    return isinstance(value, list) and any(_has_nul(v) for v in value)
