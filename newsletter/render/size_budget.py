"""Keep an edition's HTML under Gmail's clipping size.

Gmail clips HTML above ~102 KB (docs/ARCHITECTURE.md, "Email facts"), hiding the footer and
its unsubscribe link. The size is measured with realistic per-recipient values, and when a
day is still too large the last stories shrink (title, facts and a link to the web version).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from newsletter.render.slots import SLOTS, SlottedText

T = TypeVar("T")
# A signed unsubscribe or preferences URL on a real domain is about this long.
SAMPLE_VALUE_LENGTH = 150
# KB as 1,000 bytes: the safe side of Gmail's limit.
KB = 1000


def measuring_values(slots: Sequence[str] = SLOTS) -> dict[str, str]:
    """A realistic value for every slot, for measuring the size of a filled copy."""
    return {name: f"https://news.example.org/{name}/".ljust(SAMPLE_VALUE_LENGTH, "x")
            for name in slots}


def html_size(html: SlottedText) -> int:
    """Bytes of one recipient's HTML part, as Gmail counts it (UTF-8, before encoding)."""
    return len(html.fill_html(measuring_values(html.slots)).encode("utf-8"))


def fit(render: Callable[[int], T], count: int, size: Callable[[T], int],
        budget: int) -> tuple[T, int]:
    """`render(k)` with the smallest k (stories shrunk, 0..count) whose size is within
    `budget`, or with all shrunk when nothing fits. Size falls as k grows, so bisect:
    an ordinary day costs one render, an oversized one a few."""
    done: dict[int, T] = {}

    def fits(k: int) -> bool:
        done[k] = render(k)
        return size(done[k]) <= budget

    if fits(0):
        return done[0], 0
    low, high = 1, count  # the answer is in [low, high]; high may not fit either
    while low < high:
        middle = (low + high) // 2
        if fits(middle):
            high = middle
        else:
            low = middle + 1
    if high not in done:
        done[high] = render(high)
    return done[high], high
