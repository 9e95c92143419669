"""Story text shaped for reading: paragraphs, the opening of a long narrative, and plain
text wrapped at 78 columns.

The email shows a narrative whole up to NEWSLETTER_NARRATIVE_WORDS words and only its
opening past that (the web edition and the text part always show it whole), so one long
narrative cannot make a column thousands of pixels tall.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# RFC 5322 2.1.1: lines SHOULD be no longer than 78 characters.
TEXT_WIDTH = 78
# An English word and its space, on average: caps the opening of text written without
# spaces (Chinese, Japanese), where one "word" can be a whole paragraph.
CHARS_PER_WORD = 7
# After a cut word; the no-break space keeps it from wrapping onto a line of its own.
ELLIPSIS = "\u00a0…"
_WORD = re.compile(r"\S+")
_SENTENCE_END = re.compile(r"[.!?…。！？؟]['\"’”»)]*(?=\s|$)")
_URL = re.compile(r"(?:https?://|mailto:)\S+")


def paragraphs(text: str) -> list[str]:
    """Paragraphs are separated by a blank line (newsletter.stories.data)."""
    return [p.strip() for p in text.split("\n\n") if p.strip()]


@dataclass(frozen=True)
class Opening:
    paragraphs: list[str]
    cut: bool  # True when the narrative goes on past these paragraphs


def opening(text: str, words: int | None) -> Opening:
    """The narrative whole when it has at most `words` words (None: always whole); else
    its first paragraphs up to about that many, ending at a sentence where one ends in
    the second half of the last paragraph shown, else at a word, with an ellipsis."""
    whole = paragraphs(text)
    if words is None or _fits(text, words, words * CHARS_PER_WORD):
        return Opening(whole, False)
    shown: list[str] = []
    word_budget, char_budget = words, words * CHARS_PER_WORD
    for paragraph in whole:
        if _fits(paragraph, word_budget, char_budget):
            shown.append(paragraph)
            word_budget -= len(_WORD.findall(paragraph))
            char_budget -= len(paragraph)
            continue
        part = _cut(paragraph, word_budget, char_budget)
        if part:
            shown.append(part)
        break
    return Opening(shown, True)


def _fits(text: str, words: int, chars: int) -> bool:
    return len(_WORD.findall(text)) <= words and len(text) <= chars


def _cut(paragraph: str, words: int, chars: int) -> str:
    end = 0
    for count, match in enumerate(_WORD.finditer(paragraph)):
        if count >= words or match.end() > chars:
            break
        end = match.end()
    if end == 0 and words > 0 and chars > 0:  # one endless "word": text without spaces
        end = chars
    if end == 0:
        return ""
    sentences = [m.end() for m in _SENTENCE_END.finditer(paragraph, 0, end)]
    if sentences and sentences[-1] >= end // 2:
        return paragraph[:sentences[-1]]
    return paragraph[:end].rstrip() + ELLIPSIS


def wrap(text: str, first: str = "", rest: str | None = None,
         width: int = TEXT_WIDTH) -> str:
    """`text` as lines of at most `width` characters, the first starting with `first` and
    the others with `rest` (a hanging indent for bullets); a paragraph's own line breaks
    are kept. A URL is never split (a reader copies or clicks it whole): it goes on a line
    of its own, however long; another over-long run, such as text without spaces, is cut.
    (A greedy fill: textwrap's regular expressions cost 30x more here.)"""
    rest = " " * len(first) if rest is None else rest
    out: list[str] = []
    for number, line in enumerate(text.splitlines() or [""]):
        out.extend(_fill(line.split(), first if number == 0 else rest, rest, width))
    return "\n".join(out)


def _fill(words: list[str], first: str, rest: str, width: int) -> list[str]:
    lines: list[str] = []
    current, empty = first, True
    for word in words:
        if not empty and len(current) + 1 + len(word) > width:
            lines.append(current)
            current, empty = rest, True
        while len(current) + len(word) > width and not _URL.match(word) \
                and len(current) < width:  # too long for any line: cut it
            room = width - len(current)
            lines.append(current + word[:room])
            current, word = rest, word[room:]
        current, empty = (current + word, False) if empty else (f"{current} {word}", False)
    lines.append(current if not empty else current.rstrip())
    return lines
