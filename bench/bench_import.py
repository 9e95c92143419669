"""`newsletter subscribers import --confirmed` into a fresh database as the list grows, on
SQLite and (with BENCH_DATABASE_URL) PostgreSQL, side by side.

    .venv/bin/python bench/bench_import.py [SIZES=100000,1000000]

Baseline, measured in the same run: the same rows written by one plain multi-row INSERT
(no checks, no refused-row report), the floor of what the database allows. The import
must stay linear: rows/s at the largest size close to rows/s at the smallest.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import sqlalchemy as sa

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_send import newsletter  # noqa: E402
from databases import POSTGRES, fresh_url  # noqa: E402

from newsletter.store.db import make_engine, upgrade  # noqa: E402
from newsletter.store.models import Subscriber, utcnow  # noqa: E402


def people(size: int, folder: Path) -> Path:
    csv = folder / f"people-{size}.csv"
    with csv.open("w") as out:
        out.write("email,name\n")
        for n in range(size):
            out.write(f"reader{n}@example.com,Reader {n}\n")
    return csv


def plain_insert(url: str, size: int, chunk: int = 5000) -> float:
    engine = make_engine(url)
    upgrade(engine)
    now = utcnow()
    start = time.perf_counter()
    with engine.begin() as conn:
        for first in range(0, size, chunk):
            conn.execute(sa.insert(Subscriber), [
                {"email": f"reader{n}@example.com", "email_key": f"reader{n}@example.com",
                 "name": f"Reader {n}", "status": "confirmed", "created_at": now,
                 "status_changed_at": now, "confirmed_at": now}
                for n in range(first, min(size, first + chunk))])
    engine.dispose()
    return time.perf_counter() - start


def main(sizes: list[int]) -> None:
    backends = ["sqlite"] + (["postgresql"] if POSTGRES else [])
    folder = Path(tempfile.mkdtemp(prefix="bench-import-"))
    print("subscribers import --confirmed, whole command, fresh database each time:")
    print(f"  {'rows':>9} " + "".join(f"| {b:^34} " for b in backends))
    for size in sizes:
        csv = people(size, folder)
        cells = []
        for backend in backends:
            ours, plain = folder / f"{backend}-{size}", folder / f"{backend}-{size}-plain"
            ours.mkdir()
            plain.mkdir()
            env = {**os.environ, "NEWSLETTER_DATABASE_URL": fresh_url(ours, backend)}
            seconds, rss, _ = newsletter(env, "subscribers", "import", str(csv), "--confirmed")
            base = plain_insert(fresh_url(plain, backend), size)
            cells.append(f"{seconds:6.1f} s {size / seconds:>8,.0f}/s {rss:4.0f} MB "
                         f"x{seconds / base:4.1f} plain")
        print(f"  {size:>9,} " + "".join(f"| {c} " for c in cells))
    print("  (x: the command's time over one plain multi-row INSERT of the same rows)")


if __name__ == "__main__":
    main([int(n) for n in (sys.argv[1] if len(sys.argv) > 1 else "100000,1000000").split(",")])
