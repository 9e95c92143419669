"""A row per send run, so operators (`newsletter status`) can see what happened and when."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, Row, insert, select, update
from sqlalchemy.exc import SQLAlchemyError

from newsletter.store.tables import runs, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session


@dataclass
class RunRecord:
    """The run in progress: the caller fills `outcome` and `detail` on success."""

    id: int
    outcome: str | None = None
    detail: str | None = None


@contextlib.contextmanager
def recorded_run(engine: Engine, kind: str, date: dt.date | None) -> Iterator[RunRecord]:
    """Record start, end and outcome; the caller fills `outcome`/`detail` on success."""
    with engine.begin() as conn:
        run = RunRecord(conn.execute(insert(runs).values(
            kind=kind, edition_date=date, started_at=utcnow()).returning(runs.c.id)).scalar_one())
    try:
        yield run
    except BaseException as err:
        run.outcome, run.detail = "failed", str(err)[:2000] or type(err).__name__
        raise
    finally:
        # With the database gone, the error that stopped the run says more than this one.
        with contextlib.suppress(SQLAlchemyError), engine.begin() as conn:
            conn.execute(update(runs).where(runs.c.id == run.id).values(
                finished_at=utcnow(), outcome=run.outcome, detail=run.detail))


def last_runs(db: Connection | Session, limit: int = 5) -> list[Row]:
    """The latest `runs` rows, newest first."""
    return list(db.execute(select(runs).order_by(runs.c.id.desc()).limit(limit)))
