"""A fresh, empty database for each measured run: SQLite in a temporary folder, or, when
BENCH_DATABASE_URL names a PostgreSQL server, a new database there (dropped at exit)."""

from __future__ import annotations

import atexit
import os
import secrets
from pathlib import Path

import sqlalchemy as sa

POSTGRES = os.environ.get("BENCH_DATABASE_URL")


def fresh_url(folder: Path, backend: str | None = None) -> str:
    """`backend`: "sqlite", "postgresql", or None for PostgreSQL if BENCH_DATABASE_URL is set."""
    backend = backend or ("postgresql" if POSTGRES else "sqlite")
    if backend == "sqlite":
        return f"sqlite:///{folder / 'bench.db'}"
    if not POSTGRES:
        raise SystemExit("set BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1/postgres")
    name = f"bench_{secrets.token_hex(4)}"
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    atexit.register(drop)
    return POSTGRES.rsplit("/", 1)[0] + "/" + name
