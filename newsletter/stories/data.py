"""A story as plain data: what the parsers produce and what rendering consumes."""

from __future__ import annotations

from dataclasses import dataclass, field

from newsletter.store.models import Fact, Narrative, Source, Story


@dataclass(frozen=True)
class NarrativeData:
    label: str
    text: str  # paragraphs separated by a blank line ("\n\n")


@dataclass(frozen=True)
class SourceData:
    url: str
    label: str | None = None


@dataclass(frozen=True)
class StoryData:
    title: str
    facts: tuple[str, ...]
    narratives: tuple[NarrativeData, ...]
    sources: tuple[SourceData, ...] = ()
    image_url: str | None = None
    image_credit: str | None = None
    origin: str | None = field(default=None, compare=False)  # file it came from

    @classmethod
    def from_model(cls, story: Story) -> StoryData:
        return cls(
            title=story.title,
            facts=tuple(f.text for f in story.facts),
            narratives=tuple(NarrativeData(n.label, n.text) for n in story.narratives),
            sources=tuple(SourceData(s.url, s.label) for s in story.sources),
            image_url=story.image_url,
            image_credit=story.image_credit,
            origin=story.source_file,
        )

    def to_model(self, date, position: int) -> Story:
        return self.apply(Story(date=date, position=position))

    def apply(self, story: Story) -> Story:
        """Put this content into `story` (a new row, or an edited one keeping its id and
        place); the old facts, narratives and sources go (delete-orphan)."""
        story.title, story.image_url = self.title, self.image_url
        story.image_credit, story.source_file = self.image_credit, self.origin
        story.facts = [Fact(position=i, text=t) for i, t in enumerate(self.facts)]
        story.narratives = [Narrative(position=i, label=n.label, text=n.text)
                            for i, n in enumerate(self.narratives)]
        story.sources = [Source(position=i, label=s.label, url=s.url)
                         for i, s in enumerate(self.sources)]
        return story
