"""The feedback repository on SQLite and PostgreSQL: history is kept, the newest observation
lists first, bulk imports and erasure work on the same rows."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bastion.review.feedback import (
    add_feedback,
    add_feedback_rows,
    delete_feedback_for_subjects,
    feedback_for_decision,
    feedback_for_subjects,
    list_feedback,
)
from bastion.store import Database
from tests.review.cases import NOW


def _values(decision_id: str, label: Any, *, days: float = 0, **extra: Any) -> dict[str, Any]:
    return {
        "decision_id": decision_id,
        "deployment": extra.pop("deployment", "credit"),
        "model_name": "credit",
        "model_version": 1,
        "subject_key": extra.pop("subject_key", "k1:aa"),
        "label": label,
        "source": extra.pop("source", "import"),
        "sampling_probability": extra.pop("sampling_probability", None),
        "actor": "ann",
        "created_at": NOW + timedelta(days=days),
    }


def test_history_is_kept_and_the_newest_observation_lists_first(database: Database) -> None:
    with database.transaction() as session:
        add_feedback(session, **_values("d1", 1, days=5))
        add_feedback(session, **_values("d1", 0, days=1, source="api"))
        add_feedback(
            session, **_values("d2", "refer", days=3, source="review", sampling_probability=0.25)
        )
    with database.transaction() as session:
        history = feedback_for_decision(session, "d1")
        newest = list_feedback(session, "credit")
        one = list_feedback(session, "credit", decision_id="d1", limit=1)
    assert [f.label for f in history] == [1, 0]  # as stored
    assert [(f.decision_id, f.label) for f in newest] == [("d1", 1), ("d2", "refer"), ("d1", 0)]
    assert [f.label for f in one] == [1]
    assert newest[1].sampling_probability == 0.25
    assert newest[0].to_dict()["model"] == {"name": "credit", "version": 1}


def test_bulk_rows_read_back_like_single_ones(database: Database) -> None:
    rows = [_values(f"d{i}", i % 2, days=i) for i in range(300)]
    with database.transaction() as session:
        assert add_feedback_rows(session, rows) == 300
        assert add_feedback_rows(session, []) == 0
    with database.transaction() as session:
        listed = list_feedback(session, "credit", limit=500)
    assert len(listed) == 300
    assert (listed[0].decision_id, listed[0].label, listed[0].created_at) == (
        "d299",
        1,
        NOW + timedelta(days=299),
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"source": "email"}, "source must be one of api, import, review"),
        ({"sampling_probability": 0.0}, "sampling_probability must be in \\(0, 1\\]"),
    ],
)
def test_bad_sources_and_probabilities_are_refused(
    database: Database, change: dict[str, Any], message: str
) -> None:
    with database.transaction() as session:
        with pytest.raises(ValueError, match=message):
            add_feedback(session, **_values("d1", 1, **change))
        with pytest.raises(ValueError, match=message):
            add_feedback_rows(session, [_values("d2", 1), _values("d3", 1, **change)])
    with database.transaction() as session:
        assert list_feedback(session, "credit") == []


def test_erasure_removes_a_subjects_labels_only(database: Database) -> None:
    with database.transaction() as session:
        add_feedback_rows(
            session,
            [
                _values("d1", 1, subject_key="k1:aa"),
                _values("d2", 0, subject_key="k2:aa"),
                _values("d3", 1, subject_key="k1:bb"),
            ],
        )
    with database.transaction() as session:
        assert len(feedback_for_subjects(session, ["k1:aa", "k2:aa"])) == 2
        assert delete_feedback_for_subjects(session, ["k1:aa", "k2:aa"]) == 2
    with database.transaction() as session:
        assert [f.decision_id for f in list_feedback(session, "credit")] == ["d3"]
