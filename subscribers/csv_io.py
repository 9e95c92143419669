"""Subscribers in and out as CSV.

Import keeps every valid row and reports each refused one by row number, value and reason;
it works in chunks (one query per chunk, one bulk insert) so 100,000 rows take seconds.
Export streams by keyset pages and neutralises cells a spreadsheet would run as a formula.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass, field

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from newsletter.errors import SubscriberError
from newsletter.store.models import Subscriber, SubscriberStatus, Suppression, utcnow
from subscribers.service import clean_name, parse_address

CHUNK = 1000
EMAIL_HEADERS = {"email", "e-mail", "email address", "mail"}
# OWASP "CSV injection": a leading = + - @ tab or CR makes a spreadsheet evaluate the cell.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
EXPORT_COLUMNS = ["email", "name", "status", "created_at", "confirmed_at", "status_changed_at",
                  "paused_until"]


@dataclass(frozen=True)
class Rejected:
    row: int
    value: str
    reason: str


@dataclass
class ImportReport:
    added: int = 0
    rejected: list[Rejected] = field(default_factory=list)


@dataclass(frozen=True)
class _Row:
    number: int
    email: str
    key: str
    name: str | None


def decode_csv(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise SubscriberError(f"{path}: line {line}: not UTF-8 text; save the file as UTF-8 "
                              "CSV") from None


def _rows(text: str, report: ImportReport) -> Iterator[_Row]:
    reader = csv.reader(io.StringIO(text, newline=""))
    email_col, name_col = 0, 1
    for number, cells in enumerate(reader, start=1):
        if not any(c.strip() for c in cells):
            continue
        header = [c.strip().lower() for c in cells]
        if number == 1 and EMAIL_HEADERS & set(header):
            email_col = next(i for i, h in enumerate(header) if h in EMAIL_HEADERS)
            name_col = header.index("name") if "name" in header else None
            continue
        raw = cells[email_col] if email_col < len(cells) else ""
        name = cells[name_col] if name_col is not None and name_col < len(cells) else None
        try:
            address = parse_address(raw)
            yield _Row(number, address.email, address.key, clean_name(name))
        except SubscriberError as err:
            report.rejected.append(Rejected(number, raw, str(err)))


def import_csv(session: Session, text: str, *, confirmed: bool,
               source: str = "csv import") -> ImportReport:
    report = ImportReport()
    seen: dict[str, int] = {}
    chunk: list[_Row] = []
    for row in _rows(text, report):
        if row.key in seen:
            report.rejected.append(Rejected(row.number, row.email,
                                            f"duplicate of row {seen[row.key]}"))
            continue
        seen[row.key] = row.number
        chunk.append(row)
        if len(chunk) >= CHUNK:
            _store(session, chunk, confirmed, source, report)
            chunk = []
    if chunk:
        _store(session, chunk, confirmed, source, report)
    report.rejected.sort(key=lambda r: r.row)
    return report


def _store(session: Session, chunk: list[_Row], confirmed: bool, source: str,
           report: ImportReport) -> None:
    keys = [row.key for row in chunk]
    known = dict(session.execute(select(Subscriber.email_key, Subscriber.status)
                                 .where(Subscriber.email_key.in_(keys))).all())
    blocked = dict(session.execute(select(Suppression.email_key, Suppression.reason)
                                   .where(Suppression.email_key.in_(keys))).all())
    now, fresh = utcnow(), []
    status = SubscriberStatus.CONFIRMED if confirmed else SubscriberStatus.PENDING
    for row in chunk:
        if row.key in known:
            report.rejected.append(Rejected(row.number, row.email,
                                            f"already a subscriber ({known[row.key]})"))
        elif row.key in blocked:
            report.rejected.append(Rejected(row.number, row.email,
                                            f"suppressed ({blocked[row.key]}): only a fresh "
                                            "sign-up with confirmation can bring it back"))
        else:
            fresh.append({"email": row.email, "email_key": row.key, "name": row.name,
                          "status": status, "source": source, "created_at": now,
                          "status_changed_at": now, "confirmed_at": now if confirmed else None})
    if fresh:
        session.execute(insert(Subscriber), fresh)
        report.added += len(fresh)


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
