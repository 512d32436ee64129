"""Every registry change writes its audit event in the same transaction."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bastion.errors import InvalidInput
from bastion.registry import Registry
from bastion.store import Database
from bastion.store.audit import AuditEvent, AuditLog, state_digest
from tests.registry.conftest import TrainedModel

NOW = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


@pytest.fixture
def clocked(registry: Registry) -> Registry:
    registry.clock = lambda: NOW
    return registry


def _events(database: Database, action: str | None = None) -> list[AuditEvent]:
    """The events oldest first."""
    with database.transaction() as session:
        return list(reversed(AuditLog.list(session, action=action)))


def test_register_appends_model_registered(
    clocked: Registry, database: Database, lgbm_model: TrainedModel
) -> None:
    version = clocked.register("credit", lgbm_model.path, sample=lgbm_model.frame, author="alice")

    (event,) = _events(database)
    assert (event.actor, event.action, event.target, event.at) == (
        "alice",
        "model.registered",
        "credit:1",
        NOW,
    )
    assert event.details == {"framework": "lightgbm", "sha256": version.digest}
    assert event.before_digest is None
    assert event.after_digest == state_digest(version.summary())


def test_register_of_identical_bytes_appends_nothing(
    registry: Registry, database: Database, lgbm_model: TrainedModel
) -> None:
    registry.register("credit", lgbm_model.path, sample=lgbm_model.frame)
    registry.register("credit", lgbm_model.path, sample=lgbm_model.frame)

    assert len(_events(database)) == 1


def test_refused_register_appends_nothing(
    registry: Registry, database: Database, lgbm_model: TrainedModel
) -> None:
    with pytest.raises(InvalidInput):
        registry.register("credit", lgbm_model.path, sample=lgbm_model.frame[["income"]])

    assert _events(database) == []


def test_set_stage_appends_one_event_per_moved_version(
    clocked: Registry,
    database: Database,
    lgbm_model: TrainedModel,
    lgbm_model_v2: TrainedModel,
) -> None:
    clocked.register("credit", lgbm_model.path, sample=lgbm_model.frame)
    clocked.register("credit", lgbm_model_v2.path, sample=lgbm_model_v2.frame)
    clocked.set_stage("credit:1", "production", actor="bob")

    clocked.set_stage("credit:2", "production", actor="carol")

    moves = _events(database, action="model.stage_changed")
    assert [(e.actor, e.target, e.details) for e in moves] == [
        ("bob", "credit:1", {"from": "none", "to": "production"}),
        ("carol", "credit:1", {"from": "production", "to": "archived"}),
        ("carol", "credit:2", {"from": "none", "to": "production"}),
    ]
    archived = moves[1]
    assert archived.before_digest == state_digest({"stage": "production"})
    assert archived.after_digest == state_digest({"stage": "archived"})
    assert archived.at == NOW
    with database.transaction() as session:
        report = AuditLog.verify(session)
    assert report.intact
    assert report.events == 5


def test_set_stage_to_the_current_stage_appends_nothing(
    registry: Registry, database: Database, lgbm_model: TrainedModel
) -> None:
    registry.register("credit", lgbm_model.path, sample=lgbm_model.frame)
    registry.set_stage("credit:1", "staging", actor="bob")

    registry.set_stage("credit:1", "staging", actor="bob")

    assert len(_events(database, action="model.stage_changed")) == 1
