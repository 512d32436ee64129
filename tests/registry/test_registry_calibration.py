"""A version's score calibration is stored next to it, validated and audited."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pytest

from bastion.errors import InvalidInput, NotFound
from bastion.policy.calibration import Calibration
from bastion.registry import Registry
from bastion.store import Database
from bastion.store.audit import AuditLog, state_digest
from tests.registry.conftest import TrainedModel

NOW = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)
PLATT = {"method": "platt", "a": 0.8, "b": -0.3}
ISOTONIC = {"method": "isotonic", "x": [0.1, 0.5, 0.9], "y": [0.0, 0.4, 1.0]}


@pytest.fixture
def registered(registry: Registry, lgbm_model: TrainedModel) -> Registry:
    registry.register("credit", lgbm_model.path, sample=lgbm_model.frame, author="alice")
    registry.clock = lambda: NOW
    return registry


def test_new_version_has_no_calibration(registered: Registry) -> None:
    assert registered.get("credit:1").calibration is None


def test_set_calibration_is_read_back_by_get(registered: Registry) -> None:
    updated = registered.set_calibration("credit:1", ISOTONIC, actor="bob")

    stored = registered.get("credit:1").calibration
    assert stored == updated.calibration == ISOTONIC
    assert stored is not None
    scores = np.array([0.0, 0.3, 0.95])
    assert Calibration.from_dict(stored).transform(scores).tolist() == pytest.approx([0, 0.2, 1])


def test_summary_names_the_calibration_without_its_map(registered: Registry) -> None:
    assert registered.get("credit:1").summary()["calibration"] is None

    calibrated = registered.set_calibration(
        "credit:1", {**PLATT, "info": {"rows": 500, "ece_after": 0.01}}, actor="bob"
    )

    assert calibrated.summary()["calibration"] == {
        "method": "platt",
        "rows": 500,
        "ece_after": 0.01,
    }


def test_set_calibration_appends_an_audit_event_with_digests(
    registered: Registry, database: Database
) -> None:
    registered.set_calibration("credit:1", PLATT, actor="bob")
    registered.set_calibration("credit:1", ISOTONIC, actor="carol")

    with database.transaction() as session:
        events = AuditLog.list(session, action="model.calibration_set")
    second, first = events
    assert (first.actor, first.target, first.at) == ("bob", "credit:1", NOW)
    assert first.details == {"from": None, "to": "platt"}
    assert first.before_digest is None
    assert first.after_digest == state_digest(PLATT)
    assert second.details == {"from": "platt", "to": "isotonic"}
    assert second.before_digest == state_digest(PLATT)


def test_set_calibration_none_removes_it(registered: Registry) -> None:
    registered.set_calibration("credit:1", PLATT, actor="bob")

    assert registered.set_calibration("credit:1", None, actor="bob").calibration is None
    assert registered.get("credit:1").calibration is None


def test_invalid_calibration_is_refused_and_not_audited(
    registered: Registry, database: Database
) -> None:
    decreasing = {"method": "isotonic", "x": [0.1, 0.9], "y": [0.8, 0.2]}

    with pytest.raises(InvalidInput, match="non-decreasing"):
        registered.set_calibration("credit:1", decreasing, actor="bob")

    assert registered.get("credit:1").calibration is None
    with database.transaction() as session:
        assert AuditLog.list(session, action="model.calibration_set") == []


def test_set_calibration_of_unknown_version_is_not_found(registered: Registry) -> None:
    with pytest.raises(NotFound):
        registered.set_calibration("credit:9", PLATT, actor="bob")
