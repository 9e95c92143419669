"""Probes and metrics of the real web app: gunicorn with two workers on PostgreSQL, a
schema upgrade that runs once, and /metrics read with prometheus_client's parser."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import secrets
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from newsletter.settings import load_settings
from newsletter.store.db import head_revisions
from subscribers.web import create_app
from tests.conftest import PG_ADMIN_URL, SEED
from tests.test_web_serve import free_port

pytestmark = pytest.mark.postgres


@pytest.fixture(autouse=True)
def _postgres_only(request):
    """These tests make their own PostgreSQL databases: once is enough."""
    callspec = getattr(request.node, "callspec", None)
    if callspec and callspec.params.get("db_url") == "sqlite":
        pytest.skip("PostgreSQL only")


@pytest.fixture
def fresh_postgres(postgres_url):
    """A PostgreSQL database with nothing in it (no schema yet), dropped afterwards."""
    admin = sa.create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"newsletter_fresh_{secrets.token_hex(4)}"
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def get(port: int, path: str) -> tuple[int, str, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    connection.request("GET", path)
    response = connection.getresponse()
    answer = response.status, response.getheader("Content-Type"), response.read().decode()
    connection.close()
    return answer


def newsletter(environ: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "newsletter", *args], env=environ,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def gunicorn(env, fresh_postgres):
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")},
               **env, "NEWSLETTER_DATABASE_URL": fresh_postgres}
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--workers", "2", "--bind", f"127.0.0.1:{port}",
         "subscribers.web:create_app()"], env=environ, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while True:
        try:
            if get(port, "/healthz")[0] == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"gunicorn did not start: {process.stdout.read().decode()}")
        time.sleep(0.2)
    yield port, environ
    process.terminate()
    process.wait(timeout=20)


def schema_tables(url: str) -> set[str]:
    engine = sa.create_engine(url)
    names = set(sa.inspect(engine).get_table_names())
    engine.dispose()
    return names


def test_workers_never_migrate_and_readyz_says_so_until_the_deploy_step(gunicorn):
    port, environ = gunicorn
    url = environ["NEWSLETTER_DATABASE_URL"]
    for _ in range(6):  # both workers, whichever answers
        status, kind, body = get(port, "/readyz")
        assert (status, kind) == (503, "application/json")
        report = json.loads(body)
        assert report["ok"] is False
        schema = next(c for c in report["checks"] if c["name"] == "schema")
        assert "none (empty database)" in schema["detail"]
        assert "newsletter db upgrade" in schema["detail"]
        assert get(port, "/healthz")[0] == 200  # alive, though not ready
    assert schema_tables(url) == set()  # no worker ran Alembic

    upgraded = newsletter(environ, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    for _ in range(6):
        status, _, body = get(port, "/readyz")
        assert status == 200, body
        assert json.loads(body)["ok"] is True


def test_metrics_from_either_worker_parse_and_carry_no_personal_data(gunicorn, tmp_path):
    port, environ = gunicorn
    assert newsletter(environ, "stories", "import", str(SEED)).returncode == 0
    people = tmp_path / "people.csv"
    people.write_text("email\n" + "".join(f"m{n}@example.com\n" for n in range(4)))
    assert newsletter(environ, "subscribers", "import", str(people), "--confirmed"
                      ).returncode == 0
    assert newsletter(environ, "subscribers", "add", "late@example.com").returncode == 0
    assert newsletter(environ, "send").returncode == 0
    today = dt.datetime.now(dt.UTC).date().isoformat()  # NEWSLETTER_TIMEZONE is UTC here
    for _ in range(4):
        status, kind, body = get(port, "/metrics")
        assert status == 200 and kind.startswith("text/plain; version=")
        assert "@" not in body  # no address anywhere
        samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
                   for family in text_string_to_metric_families(body)
                   for s in family.samples}
        assert samples[("newsletter_database_up", ())] == 1
        assert samples[("newsletter_deliveries", (("edition", today), ("state", "sent")))] == 4
        assert samples[("newsletter_subscribers", (("status", "confirmed"),))] == 4
        assert samples[("newsletter_subscribers", (("status", "pending"),))] == 1
        assert samples[("newsletter_mail_queue_messages", (("state", "queued"),))] == 0
        assert samples[("newsletter_mail_queue_oldest_age_seconds", ())] == 0
        sent_at = samples[("newsletter_last_successful_send_timestamp_seconds", ())]
        assert abs(time.time() - sent_at) < 600


def test_concurrent_upgrades_wait_for_each_other(env, fresh_postgres):
    environ = {**{k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")},
               **env, "NEWSLETTER_DATABASE_URL": fresh_postgres}
    with ThreadPoolExecutor(4) as pool:
        runs = list(pool.map(lambda _: newsletter(environ, "db", "upgrade"), range(4)))
    assert [r.returncode for r in runs] == [0] * 4, [r.stderr for r in runs]
    engine = sa.create_engine(fresh_postgres)
    with engine.connect() as conn:
        versions = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        assert set(versions) == set(head_revisions())
    engine.dispose()


def test_readyz_answers_503_with_a_reason_when_the_database_is_gone(env, monkeypatch):
    settings = load_settings(database_url="postgresql+psycopg://postgres@127.0.0.1:1/none")
    client = create_app(settings).test_client()
    assert client.get("/healthz").status_code == 200
    answer = client.get("/readyz")
    assert answer.status_code == 503
    [check] = answer.get_json()["checks"]
    assert check["name"] == "database" and not check["ok"]
    assert check["detail"].startswith("cannot reach the database:")
    metrics = client.get("/metrics").text
    assert "newsletter_database_up 0.0" in metrics
