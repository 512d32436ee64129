from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from bastion.errors import StorageError
from bastion.store import Database
from bastion.store.database import normalize_url
from bastion.store.tables import ModelRow

CREATED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def _model_names(database: Database) -> list[str]:
    with database.transaction() as session:
        return list(session.scalars(select(ModelRow.name).order_by(ModelRow.name)))


def test_transaction_commits_on_success(database: Database) -> None:
    with database.transaction() as session:
        session.add(ModelRow(name="credit", created_at=CREATED))

    assert _model_names(database) == ["credit"]


def _add_then(database: Database, failure: Callable[[Session], object]) -> None:
    """Add a model row and flush it, then fail inside the same transaction."""
    with database.transaction() as session:
        session.add(ModelRow(name="lost", created_at=CREATED))
        session.flush()
        failure(session)


def _bad_sql(session: Session) -> None:
    session.execute(text("SELECT no_such_column FROM no_such_table"))


def _duplicate(session: Session) -> None:
    session.add(ModelRow(name="credit", created_at=CREATED))


def _caller_bug(session: Session) -> None:
    raise KeyError("caller bug")


def test_transaction_turns_a_driver_error_into_storage_error_and_rolls_back(
    database: Database,
) -> None:
    with pytest.raises(StorageError, match="database error: ") as caught:
        _add_then(database, _bad_sql)

    assert caught.value.status == 503
    assert "no_such_table" not in caught.value.message
    assert isinstance(caught.value.__cause__, SQLAlchemyError)
    assert _model_names(database) == []


def test_transaction_turns_an_integrity_error_into_storage_error(database: Database) -> None:
    with database.transaction() as session:
        session.add(ModelRow(name="credit", created_at=CREATED))

    with pytest.raises(StorageError, match="IntegrityError"):
        _add_then(database, _duplicate)

    assert _model_names(database) == ["credit"]


def test_transaction_rolls_back_and_passes_other_errors_through(database: Database) -> None:
    with pytest.raises(KeyError):
        _add_then(database, _caller_bug)

    assert _model_names(database) == []


def test_datetimes_come_back_timezone_aware_in_utc(database: Database) -> None:
    paris = datetime(2026, 3, 4, 6, 6, 7, tzinfo=timezone(timedelta(hours=1)))
    with database.transaction() as session:
        session.add(ModelRow(name="credit", created_at=paris))

    with database.transaction() as session:
        stored = session.scalar(select(ModelRow.created_at))

    assert stored == CREATED
    assert stored is not None
    assert stored.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(database: Database) -> None:
    def add_naive(session: Session) -> None:
        session.add(ModelRow(name="credit", created_at=datetime(2026, 1, 1)))

    with pytest.raises(StorageError):
        _add_then(database, add_naive)

    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(ModelRow)) == 0


@pytest.mark.parametrize(
    "url", ["postgresql://u@h/db", "postgres://u@h/db", "postgresql+psycopg://u@h/db"]
)
def test_normalize_url_uses_psycopg_for_postgres(url: str) -> None:
    assert normalize_url(url).drivername == "postgresql+psycopg"


def test_database_repr_masks_the_password() -> None:
    database = Database("postgresql://bastion:s3cret@db.internal/bastion")
    try:
        assert "s3cret" not in repr(database)
        assert "db.internal" in repr(database)
    finally:
        database.dispose()
