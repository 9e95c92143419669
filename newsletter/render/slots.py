"""Rendered text with named holes for what differs per recipient.

Rendering runs once per edition with each slot set to a random marker, then splits the
output at the markers. A recipient's copy is the literals joined with that recipient's
values: no template engine, no re-render, and story text can never be taken for a slot
(the markers are random and checked absent from the input).
"""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

# The per-recipient values every email and web view may use.
SLOTS = ("email", "unsubscribe_url", "preferences_url", "webview_url")


@dataclass(frozen=True)
class SlottedText:
    """literals[0] slot[0] literals[1] slot[1] ... literals[-1]."""

    literals: tuple[str, ...]
    slots: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.literals) != len(self.slots) + 1:
            raise ValueError("a SlottedText needs one more literal than slots")

    def fill(self, values: Mapping[str, str]) -> str:
        parts = [self.literals[0]]
        for slot, literal in zip(self.slots, self.literals[1:], strict=True):
            parts.append(values[slot])
            parts.append(literal)
        return "".join(parts)

    def fill_html(self, values: Mapping[str, str]) -> str:
        """Fill an HTML part: values are text there, so they go in escaped."""
        return self.fill(html_values(values))

    def to_json(self) -> dict:
        return {"literals": list(self.literals), "slots": list(self.slots)}

    @classmethod
    def from_json(cls, data: Mapping) -> SlottedText:
        return cls(tuple(data["literals"]), tuple(data["slots"]))


def html_values(values: Mapping[str, str]) -> dict[str, str]:
    """Slot values as they go into HTML: an address may hold `&` or `'`, a URL `&`."""
    return {name: html.escape(value) for name, value in values.items()}


class Markers:
    """One random, alphanumeric marker per slot: survives MJML, HTML escaping, CSS inlining
    and URL attributes unchanged, so it can be found again after rendering."""

    def __init__(self, names: Sequence[str] = SLOTS):
        self.token = secrets.token_hex(8)
        self.by_name = {name: f"zz{self.token}{i}slotzz" for i, name in enumerate(names)}
        self._pattern = re.compile("|".join(re.escape(m) for m in self.by_name.values()))
        self._names = {m: n for n, m in self.by_name.items()}

    def check_absent(self, *texts: str) -> None:
        """Fail loudly if input already holds a marker (it cannot by chance: 64 random bits)."""
        for text in texts:
            if self.token in text:
                raise ValueError("rendering input contains a slot marker")

    def split(self, rendered: str) -> SlottedText:
        literals, slots, start = [], [], 0
        for match in self._pattern.finditer(rendered):
            literals.append(rendered[start:match.start()])
            slots.append(self._names[match.group()])
            start = match.end()
        literals.append(rendered[start:])
        return SlottedText(tuple(literals), tuple(slots))
