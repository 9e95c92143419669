"""newsletter.stories.desk on SQLite and PostgreSQL: order, titles, frozen days, the day lock."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select, text

from newsletter.errors import EditionFrozen
from newsletter.store.models import Edition, Story
from newsletter.stories import desk
from newsletter.stories.imports import load_day
from tests.test_rendering import story

DAY = dt.date(2099, 5, 1)
TODAY = dt.date(2099, 4, 1)


def titles(session) -> list[str]:
    return [s.title for s in load_day(session, DAY)]


def test_moves_swap_neighbours_and_stop_at_the_ends(sessions):
    with sessions.begin() as session:
        one, two, three = (desk.add(session, DAY, story(t), "test") for t in "ABC")
        desk.delete(session, two, "test")  # a gap in the positions changes nothing
        four = desk.add(session, DAY, story("D"), "test")
        assert titles(session) == ["A", "C", "D"]
        assert desk.move(session, one, -1, "test") is False
        assert desk.move(session, four, 1, "test") is False
        assert desk.move(session, one, 1, "test") is True
        assert desk.move(session, four, -1, "test") is True
        assert titles(session) == ["C", "D", "A"] and three.id is not None
        positions = session.scalars(select(Story.position).where(Story.date == DAY))
        assert len(set(positions)) == 3


def test_titles_are_unique_within_a_day(sessions):
    with sessions.begin() as session:
        first = desk.add(session, DAY, story("A"), "test")
        desk.add(session, DAY + dt.timedelta(days=1), story("A"), "test")  # another day
        with pytest.raises(desk.TitleTaken, match="already has a story titled 'A'"):
            desk.add(session, DAY, story("A"), "test")
        second = desk.add(session, DAY, story("B"), "test")
        with pytest.raises(desk.TitleTaken):
            desk.edit(session, second, story("A"), "test")
        desk.edit(session, first, story("A"), "test")  # its own title is fine


def test_a_frozen_day_names_the_next_open_one(sessions):
    with sessions.begin() as session:
        desk.ensure_open(session, DAY, TODAY)
        for day in (DAY, DAY + dt.timedelta(days=1)):
            session.add(Edition(date=day, subject="s", content={}))
        session.flush()
        with pytest.raises(EditionFrozen) as caught:
            desk.ensure_open(session, DAY, TODAY)
        assert caught.value.correction_day == DAY + dt.timedelta(days=2)
        assert "is sending" in str(caught.value)
        with pytest.raises(EditionFrozen) as caught:  # an old day: not before today
            desk.ensure_open(session, DAY, DAY + dt.timedelta(days=30))
        assert caught.value.correction_day == DAY + dt.timedelta(days=30)


@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
def test_on_postgresql_a_change_holds_the_day_until_it_commits(sessions):
    probe = text("SELECT pg_try_advisory_xact_lock(19001, :day)")
    with sessions() as editor, sessions() as other:
        with editor.begin():
            desk.ensure_open(editor, DAY, TODAY)
            with other.begin():
                assert other.scalar(probe, {"day": DAY.toordinal()}) is False
                assert other.scalar(probe, {"day": DAY.toordinal() + 1}) is True
        with other.begin():
            assert other.scalar(probe, {"day": DAY.toordinal()}) is True
