"""Subscribers out as CSV, and the file checks of an import (subscribers.importing).

Export streams by keyset pages and neutralises cells a spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

from sqlalchemy import select
from sqlalchemy.orm import Session

from newsletter.errors import SubscriberError
from newsletter.store.models import Subscriber

# OWASP "CSV injection": a leading = + - @ tab or CR makes a spreadsheet evaluate the cell.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = ["email", "name", "status", "created_at", "confirmed_at", "status_changed_at",
                  "paused_until"]


def decode_csv(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise SubscriberError(f"{path}: line {line}: not UTF-8 text; save the file as UTF-8 "
                              "CSV") from None


def safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def iter_subscribers(session: Session, status: str | None = None,
                     page: int = 1000) -> Iterator[Subscriber]:
    """Every subscriber (with `status`) by id, one page at a time (keyset paging: flat
    memory)."""
    last = 0
    only = [Subscriber.status == status] if status else []
    while True:
        rows = session.scalars(select(Subscriber).where(Subscriber.id > last, *only)
                               .order_by(Subscriber.id).limit(page)).all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id
        session.expunge_all()


def export_csv(session: Session, out: io.TextIOBase) -> int:
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    count = 0
    for person in iter_subscribers(session):
        writer.writerow([safe_cell(person.email), safe_cell(person.name),
                         str(person.status), _iso(person.created_at),
                         _iso(person.confirmed_at), _iso(person.status_changed_at),
                         _iso(person.paused_until)])
        count += 1
    return count


def _iso(value) -> str:
    return value.isoformat() if value is not None else ""
