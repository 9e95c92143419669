"""A row per send run, so operators (`newsletter status`) can see what happened and when."""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Iterator

from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from newsletter.store.models import Run, utcnow


@contextlib.contextmanager
def recorded_run(engine: Engine, kind: str, date: dt.date | None) -> Iterator[Run]:
    """Record start, end and outcome; the caller fills `outcome`/`detail` on success."""
    with Session(engine, expire_on_commit=False) as session, session.begin():
        run = Run(kind=kind, edition_date=date, started_at=utcnow())
        session.add(run)
    try:
        yield run
    except BaseException as err:
        run.outcome, run.detail = "failed", str(err)[:2000] or type(err).__name__
        raise
    finally:
        # With the database gone, the error that stopped the run says more than this one.
        with contextlib.suppress(SQLAlchemyError), Session(engine) as session, session.begin():
            row = session.get(Run, run.id)
            row.finished_at, row.outcome, row.detail = utcnow(), run.outcome, run.detail


def last_runs(session: Session, limit: int = 5) -> list[Run]:
    return list(session.scalars(select(Run).order_by(Run.id.desc()).limit(limit)))
