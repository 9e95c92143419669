"""A CLI that starts fast: `newsletter --help` and `--version` load none of the heavy
libraries, and `status` and `health` none of the rendering, web or HTTP ones, nor the ORM
or Alembic: they read through SQLAlchemy Core (measured with `python -X importtime`;
bench/bench_startup.py times them)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from alembic.script import ScriptDirectory

from newsletter.cli.subscribers import STATUSES
from newsletter.store.db import alembic_config, head_revisions
from newsletter.store.models import SubscriberStatus

HEAVY = ("sqlalchemy", "alembic", "premailer", "mjml", "flask", "jinja2", "requests",
         "pydantic", "pydantic_settings", "prometheus_client", "rich", "apscheduler",
         "cssutils", "email_validator")
RENDERING_AND_WEB = ("alembic", "premailer", "mjml", "flask", "jinja2", "requests",
                     "prometheus_client", "rich", "apscheduler", "cssutils")
# What status and health do without: the ORM and the models mapped with it (~0.1 s), the
# stories and the ledger's send path, and the validators of settings they leave unset.
NOT_TO_READ = ("sqlalchemy.orm", "newsletter.store.models", "newsletter.stories",
               "newsletter.delivery.ledger", "newsletter.mail", "email_validator", "limits")


def imported(*args: str, env=None) -> set[str]:
    """Modules a `newsletter ARGS` process imported (from -X importtime)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "newsletter", *args],
                          capture_output=True, text=True, timeout=60, env=env)
    # 0, or 1 from `health` on a day that needs a person (none was sent here)
    assert done.returncode in (0, 1), [x for x in done.stderr.splitlines()
                                       if "import time" not in x]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


def packages(modules: set[str]) -> set[str]:
    return {name.split(".")[0] for name in modules}


@pytest.mark.parametrize("args", [("--help",), ("--version",), ("send", "--help")])
def test_help_and_version_load_nothing_heavy(args):
    loaded = packages(imported(*args))
    assert "newsletter" in loaded
    assert sorted(loaded & set(HEAVY)) == []


def test_status_and_health_load_no_rendering_web_http_or_orm(env, cli):
    import os

    environ = {**os.environ, **env}
    assert cli("db", "upgrade").exit_code == 0
    for args in (("status",), ("health",), ("status", "--json"), ("health", "--json")):
        modules = imported(*args, env=environ)
        assert "newsletter.store.tables" in modules  # they did read the database
        assert sorted(packages(modules) & set(RENDERING_AND_WEB)) == [], args
        assert sorted(m for m in modules for heavy in NOT_TO_READ
                      if m == heavy or m.startswith(heavy + ".")) == [], args
        if env["NEWSLETTER_DATABASE_URL"].startswith("sqlite"):  # nor the other dialect
            assert "sqlalchemy.dialects.postgresql" not in modules, args


def test_the_schema_head_is_read_without_alembic_as_alembic_reads_it():
    script = ScriptDirectory.from_config(alembic_config())
    assert head_revisions() == frozenset(script.get_heads())


def test_subscriber_statuses_spelt_out_for_help_match_the_model():
    assert tuple(s.value for s in SubscriberStatus) == STATUSES
