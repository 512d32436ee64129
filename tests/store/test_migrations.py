"""The Alembic migrations build exactly the schema `tables.py` declares, on both databases."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, select

from bastion.store import Database
from bastion.store.tables import Base, ModelRow

TABLES = {
    "models",
    "model_versions",
    "stage_transitions",
    "decisions",
    "audit_events",
    "api_keys",
    "review_tasks",
    "feedback",
    "monitor_windows",
    "alert_states",
    "alert_events",
}


@pytest.fixture
def fresh(database_url: str) -> Iterator[Database]:
    """A database with no schema at all (unlike the `database` fixture, not migrated)."""
    db = Database(database_url)
    try:
        yield db
    finally:
        db.dispose()


def _tables(db: Database) -> set[str]:
    return set(inspect(db.engine).get_table_names()) - {"alembic_version"}


def _schema_differences(db: Database) -> list[Any]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        differences: list[Any] = compare_metadata(context, Base.metadata)
    return differences


def _current_revision(db: Database) -> str | None:
    with db.engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def _head(db: Database) -> str | None:
    return ScriptDirectory.from_config(db.alembic_config()).get_current_head()


def test_migrate_creates_the_schema(fresh: Database) -> None:
    assert _tables(fresh) == set()

    fresh.migrate()

    assert _tables(fresh) == TABLES
    assert _current_revision(fresh) == _head(fresh)


def test_migrated_schema_matches_the_table_definitions(fresh: Database) -> None:
    fresh.migrate()

    # Types are compared too: `UTCDateTime` is compared through its DateTime(timezone=True)
    # implementation, so no difference needs to be ignored.
    assert _schema_differences(fresh) == []


def test_migrate_twice_is_a_no_op(fresh: Database) -> None:
    fresh.migrate()
    with fresh.transaction() as session:
        session.add(ModelRow(name="kept", created_at=datetime(2026, 1, 2, tzinfo=UTC)))

    fresh.migrate()

    assert _tables(fresh) == TABLES
    assert _current_revision(fresh) == _head(fresh)
    with fresh.transaction() as session:
        assert session.scalars(select(ModelRow.name)).all() == ["kept"]


def test_downgrade_to_base_then_upgrade_again(fresh: Database) -> None:
    fresh.migrate()

    command.downgrade(fresh.alembic_config(), "base")

    assert _tables(fresh) == set()
    assert _current_revision(fresh) is None

    fresh.migrate()

    assert _tables(fresh) == TABLES
    assert _schema_differences(fresh) == []
