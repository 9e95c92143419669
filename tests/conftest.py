"""Shared fixtures: real databases (SQLite and PostgreSQL), settings, the CLI.

PostgreSQL, Redis and Chromium tests skip when those are missing, unless CI asks for them
with NEWSLETTER_REQUIRE_POSTGRES=1 / NEWSLETTER_REQUIRE_REDIS=1 / NEWSLETTER_REQUIRE_BROWSER=1,
where a missing one fails.
"""

from __future__ import annotations

import os
import secrets
import shutil
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from newsletter.settings import load_settings
from newsletter.store.db import make_engine, session_factory, upgrade
from newsletter.store.models import Base

PG_ADMIN_URL = os.environ.get("NEWSLETTER_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
SAMPLES = Path(__file__).parent.parent / "newsletter" / "samples"
SEED = SAMPLES / "000_76b365919c3e08c6.txt"


def _required(name: str) -> bool:
    return os.environ.get(name, "") not in ("", "0")


def _unavailable(what: str, variable: str) -> None:
    if _required(variable):
        pytest.fail(f"{what} is required here ({variable}=1) but is not available")
    pytest.skip(f"{what} not available")


@pytest.fixture(scope="session")
def postgres_url():
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"newsletter_test_{secrets.token_hex(4)}"
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError:
        admin.dispose()
        _unavailable("PostgreSQL", "NEWSLETTER_REQUIRE_POSTGRES")
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    yield url
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def redis_url():
    """The real Redis (NEWSLETTER_TEST_REDIS_URL, default 127.0.0.1:6379). Tests share it
    with anything else there: each counts under its own key prefix, never flushes."""
    import redis

    url = os.environ.get("NEWSLETTER_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    client = redis.Redis.from_url(url, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError:
        _unavailable("Redis", "NEWSLETTER_REQUIRE_REDIS")
    finally:
        client.close()
    return url


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory):
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request, sqlite_url):
    """The URL of an upgraded, empty database: every store test runs on both engines."""
    url = sqlite_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    engine = make_engine(url)
    upgrade(engine)
    _empty(engine)
    engine.dispose()
    return url


def _empty(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            names = ", ".join(t.name for t in Base.metadata.sorted_tables)
            conn.execute(sa.text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
        else:
            for table in reversed(Base.metadata.sorted_tables):
                conn.execute(table.delete())


@pytest.fixture
def engine(db_url):
    engine = make_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine):
    return session_factory(engine)


def _forget_settings(monkeypatch) -> None:
    """Unset every NEWSLETTER_* setting of the shell (the test harness's own switches stay)."""
    for key in list(os.environ):
        if key.startswith("NEWSLETTER_") and not key.startswith((
                "NEWSLETTER_REQUIRE_", "NEWSLETTER_TEST_POSTGRES", "NEWSLETTER_TEST_REDIS")):
            monkeypatch.delenv(key)


@pytest.fixture
def env(db_url, tmp_path, monkeypatch):
    """Environment for a real run: own database, outbox and secret; no stray .env read."""
    monkeypatch.chdir(tmp_path)
    _forget_settings(monkeypatch)
    values = {
        "NEWSLETTER_DATABASE_URL": db_url,
        "NEWSLETTER_OUTBOX_DIR": str(tmp_path / "outbox"),
        "NEWSLETTER_SECRET_KEY": "test-secret-key-not-for-production",
        "NEWSLETTER_POSTAL_ADDRESS": "1 Test Street, Testville",
        "NEWSLETTER_BASE_URL": "https://news.example.org",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def settings(env):
    return load_settings()


@pytest.fixture
def make_settings(tmp_path, monkeypatch):
    """make(**values) -> Settings from arguments only: no stray NEWSLETTER_* variable or
    .env is read (for transport tests, which need no database)."""
    monkeypatch.chdir(tmp_path)
    _forget_settings(monkeypatch)

    def make(**overrides: object):
        return load_settings(**{"outbox_dir": tmp_path / "outbox", **overrides})

    return make


@pytest.fixture
def cli(env):
    """Run `newsletter ARGS...` in-process; returns click's Result (exit_code, output)."""
    from newsletter.cli import cli as command

    def run(*args: str, input: str | None = None):
        return CliRunner().invoke(command, list(args), input=input, catch_exceptions=False)

    return run


# A day with the sample stories, its database, and a real SMTP server to send through:
# what the end-to-end sending tests share.
DAY = "2026-11-25"


@pytest.fixture
def day(cli):
    assert cli("stories", "import", str(SAMPLES), "--date", DAY).exit_code == 0
    return DAY


@pytest.fixture
def db(env):
    engine = make_engine(env["NEWSLETTER_DATABASE_URL"])
    yield engine
    engine.dispose()


@pytest.fixture
def smtp(monkeypatch):
    """A real aiosmtpd server on loopback (tests.smtp_sink), the settings pointing at it."""
    from tests.smtp_sink import running

    with running() as server:
        monkeypatch.setenv("NEWSLETTER_TRANSPORT", "smtp")
        monkeypatch.setenv("NEWSLETTER_SMTP_HOST", "127.0.0.1")
        monkeypatch.setenv("NEWSLETTER_SMTP_PORT", str(server.port))
        yield server.handler


@pytest.fixture(scope="session")
def chromium_path():
    path = shutil.which("chromium") or ("/usr/bin/chromium"
                                        if os.path.exists("/usr/bin/chromium") else None)
    if path is None:
        _unavailable("Chromium (/usr/bin/chromium)", "NEWSLETTER_REQUIRE_BROWSER")
    return path
