"""Story files: the house text format (see the seed story) and JSON, parsed to StoryData.

Text format, in order: title line; optional `Image copyright: ...` and `Image: URL` lines;
`The Facts` then bullet lines (`•`, `-` or `*`); `The Spin` then narratives, each a short
heading line (any label) followed by its paragraph(s); optional `Articles on this story`
with one source per line (`label — URL`, `label: URL`, or a bare URL). A trailing
`Sign up to our daily newsletter` is ignored. Every refusal names the file, the line and
what was expected. Text keeps every character as written, a BOM and CRLF aside.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from newsletter.errors import StoryFormatError
from newsletter.stories.data import NarrativeData, SourceData, StoryData
from newsletter.stories.json_stories import parse_json

TEXT_SUFFIXES = {"txt", "story"}
FACTS_HEADINGS = {"the facts", "facts"}
SPIN_HEADINGS = {"the spin", "spin"}
SOURCES_HEADINGS = {"articles on this story", "sources", "articles"}
SIGN_UP = re.compile(r"sign up to our daily newsletter\W*\d*\s*$", re.IGNORECASE)
BULLET = re.compile(r"^\s*[•\-*]\s+")
URL_AT_END = re.compile(r"(https?://\S+)\s*$")
IMAGE_CREDIT = re.compile(r"^\s*image (?:copyright|credit)\s*:\s*(.*)$", re.IGNORECASE)
IMAGE_URL = re.compile(r"^\s*image\s*:\s*(https?://\S+)\s*$", re.IGNORECASE)
# A narrative heading is a short line that does not end like a sentence.
HEADING_MAX_WORDS = 12
STRONG_HEADING = re.compile(r"\bnarrative\b", re.IGNORECASE)
SENTENCE_END = (".", "!", "?", "…", '"', "”", "’", "'", ";", ",", "؟", "۔", "。", "！", "？")
# A heading with its paragraph on the very next line: at most this many words, so the
# first line of a hard-wrapped paragraph is not taken for one.
TIGHT_HEADING_MAX_WORDS = 6


@dataclass(frozen=True)
class Line:
    number: int
    text: str

    @property
    def key(self) -> str:
        return " ".join(self.text.split()).lower().rstrip(":")


def decode(data: bytes, path: str) -> str:
    """UTF-8 with or without BOM; LF, CRLF or CR line ends become LF."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise StoryFormatError(path, line, f"not UTF-8 text (byte 0x{data[err.start]:02x}); "
                                           "save the file as UTF-8") from None
    if "\x00" in text:  # PostgreSQL text cannot hold it, and no story needs it
        line = text[: text.index("\x00")].count("\n") + 1
        raise StoryFormatError(path, line, "contains a NUL character; is this a text file?")
    return text.replace("\r\n", "\n").replace("\r", "\n")


def parse_file(path: str, data: bytes) -> list[StoryData]:
    """One or more stories from a file, by its extension (.json; .txt and .story are text)
    or else its content: a title may well start with '[' ("[Update] ...")."""
    text = decode(data, path)
    if not text.strip():
        raise StoryFormatError(path, None, "the file is empty; expected a story")
    suffix = path.lower().rpartition(".")[2]
    if suffix == "json" or (suffix not in TEXT_SUFFIXES and text.lstrip().startswith(("{", "["))):
        return parse_json(path, text)
    return [parse_text(path, text)]


def parse_text(path: str, text: str) -> StoryData:
    lines = [Line(n, t) for n, t in enumerate(text.split("\n"), start=1)]
    cursor = _Cursor(path, [line for line in lines if line.text.strip()])

    title = cursor.take()
    if title is None:
        raise StoryFormatError(path, None, "the file is empty; expected a title line")
    if title.key in FACTS_HEADINGS | SPIN_HEADINGS:
        raise StoryFormatError(path, title.number, f"expected a title line before "
                                                   f"'{title.text.strip()}'")

    image_credit = image_url = None
    while (line := cursor.peek()) is not None and line.key not in FACTS_HEADINGS:
        if m := IMAGE_CREDIT.match(line.text):
            image_credit = m.group(1).strip()
        elif m := IMAGE_URL.match(line.text):
            image_url = m.group(1)
        else:
            raise StoryFormatError(path, line.number, "expected 'The Facts' heading after the "
                                                      f"title, found {_show(line)}")
        cursor.take()
    heading = cursor.expect(FACTS_HEADINGS, "'The Facts' heading", after=title)

    facts = _facts(cursor, heading)
    spin = cursor.expect(SPIN_HEADINGS, "'The Spin' heading", after=heading)
    narratives = _narratives(path, lines, spin)
    sources = _sources(path, lines, spin)
    return StoryData(title=title.text.strip(), facts=tuple(facts),
                     narratives=tuple(narratives), sources=tuple(sources),
                     image_url=image_url, image_credit=image_credit, origin=path)


class _Cursor:
    def __init__(self, path: str, lines: list[Line]):
        self.path, self.lines, self.i = path, lines, 0

    def peek(self) -> Line | None:
        return self.lines[self.i] if self.i < len(self.lines) else None

    def take(self) -> Line | None:
        line = self.peek()
        self.i += line is not None
        return line

    def expect(self, keys: set[str], what: str, after: Line) -> Line:
        line = self.take()
        if line is None:
            end = self.lines[-1].number + 1 if self.lines else after.number + 1
            raise StoryFormatError(self.path, end, f"expected {what}, found the end of the file")
        if line.key not in keys:
            raise StoryFormatError(self.path, line.number, f"expected {what}, found "
                                                           f"{_show(line)}")
        return line


def _facts(cursor: _Cursor, heading: Line) -> list[str]:
    facts: list[str] = []
    while (line := cursor.peek()) is not None and line.key not in SPIN_HEADINGS:
        cursor.take()
        if BULLET.match(line.text):
            facts.append(BULLET.sub("", line.text, count=1).strip())
        elif facts:  # a wrapped fact: keep the line break as written
            facts[-1] += "\n" + line.text.strip()
        else:
            raise StoryFormatError(cursor.path, line.number,
                                   f"expected a fact as a bullet line ('•', '-' or '*'), "
                                   f"found {_show(line)}")
    if not facts:
        at = line.number if line is not None else heading.number + 1
        raise StoryFormatError(cursor.path, at, "expected at least one fact (a bullet line) "
                                                "under 'The Facts'")
    return facts


def _blocks(lines: list[Line], start: int, stop: int) -> Iterator[list[Line]]:
    """Runs of non-blank lines (paragraphs) between two line numbers, split again where a
    heading starts with no blank line before it (see _starts_narrative)."""
    run: list[Line] = []
    for line in [*lines[start:stop], Line(0, "")]:
        if line.text.strip():
            run.append(line)
            continue
        cut = 0
        for i in range(1, len(run)):
            if _starts_narrative(run, i):
                yield run[cut:i]
                cut = i
        if run:
            yield run[cut:]
        run = []


def _starts_narrative(run: list[Line], i: int) -> bool:
    """Line i of a paragraph begins the next narrative: it names one, or it is a very short
    unpunctuated line after a finished sentence, with text after it."""
    line = run[i]
    if _names_a_narrative(line):
        return True
    return (i + 1 < len(run) and run[i - 1].text.rstrip().endswith(SENTENCE_END)
            and _looks_like_heading(line) and len(line.text.split()) <= TIGHT_HEADING_MAX_WORDS)


def _spin_end(lines: list[Line], spin: Line) -> int:
    for line in lines[spin.number:]:
        if line.key in SOURCES_HEADINGS or SIGN_UP.match(line.text.strip()):
            return line.number - 1
    return len(lines)


def _looks_like_heading(line: Line) -> bool:
    words = line.text.split()
    return 0 < len(words) <= HEADING_MAX_WORDS and not line.text.rstrip().endswith(SENTENCE_END)


def _names_a_narrative(line: Line) -> bool:
    return _looks_like_heading(line) and STRONG_HEADING.search(line.text) is not None


def _is_heading(block: list[Line], after_heading: bool) -> bool:
    """Short unpunctuated lines are headings, with guards for short paragraphs: a line
    naming a narrative always is one; any other right after a heading is that heading's
    text; and one with its paragraph on the next line must be very short (a hard-wrapped
    paragraph's first line is not a heading)."""
    first = block[0]
    if _names_a_narrative(first):
        return True
    if after_heading or not _looks_like_heading(first):
        return False
    return len(block) == 1 or len(first.text.split()) <= TIGHT_HEADING_MAX_WORDS


def _narratives(path: str, lines: list[Line], spin: Line) -> list[NarrativeData]:
    found: list[tuple[Line, list[str]]] = []
    for block in _blocks(lines, spin.number, _spin_end(lines, spin)):
        first = block[0]
        if _is_heading(block, after_heading=bool(found) and not found[-1][1]):
            found.append((first, []))
            block = block[1:]
            if not block:
                continue
        if not found:
            raise StoryFormatError(path, first.number, "expected a narrative heading (e.g. "
                                                       "'Narrative A') before this paragraph")
        found[-1][1].append("\n".join(line.text.strip() for line in block))
    if not found:
        raise StoryFormatError(path, spin.number + 1, "expected at least one narrative (a "
                                                      "heading line, then its paragraph) under "
                                                      "'The Spin'")
    for heading, paragraphs in found:
        if not paragraphs:
            raise StoryFormatError(path, heading.number, f"narrative '{heading.text.strip()}' "
                                                         "has no text; expected a paragraph "
                                                         "after its heading")
    return [NarrativeData(h.text.strip(), "\n\n".join(p)) for h, p in found]


def _sources(path: str, lines: list[Line], spin: Line) -> list[SourceData]:
    start = _spin_end(lines, spin)
    if start >= len(lines) or lines[start].key not in SOURCES_HEADINGS:
        return []
    sources = []
    for line in lines[start + 1:]:
        text = line.text.strip()
        if not text or SIGN_UP.match(text):
            continue
        match = URL_AT_END.search(text)
        if match is None:
            raise StoryFormatError(path, line.number, "expected a source: a line ending in a "
                                                      f"URL (label — https://...), found "
                                                      f"{_show(line)}")
        label = text[: match.start()].strip().rstrip("—–-:").strip() or None
        sources.append(SourceData(url=match.group(1), label=label))
    return sources


def _show(line: Line) -> str:
    text = line.text.strip()
    return repr(text if len(text) <= 60 else text[:57] + "...")
