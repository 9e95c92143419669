"""An ordinary day for rendering tests and the render benchmark: eight stories like the
seed (four narratives each), three sources each."""

import dataclasses

from newsletter.stories.data import NarrativeData, SourceData, StoryData
from newsletter.stories.imports import read_stories
from tests.conftest import SEED


def ordinary_day() -> list[StoryData]:
    seed = read_stories([SEED])[0]
    sources = tuple(SourceData(f"https://news.example.com/2026/11/25/story-{i}-report",
                               f"Example News — report {i}") for i in range(3))
    return [dataclasses.replace(seed, title=f"{seed.title} ({i})", sources=sources,
                                narratives=tuple(NarrativeData(n.label, f"({i}) {n.text}")
                                                 for n in seed.narratives))
            for i in range(8)]
