"""The schema: Alembic's migrations and the models agree, and upgrading is repeatable."""

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from newsletter.store.db import upgrade
from newsletter.store.models import Base


def test_migrations_build_exactly_the_models(engine):
    upgrade(engine)  # a second upgrade of an up-to-date database changes nothing
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == []


def test_db_upgrade_command(cli, env):
    result = cli("db", "upgrade")
    assert result.exit_code == 0 and "up to date" in result.stdout
