"""Review routing on `/v1` decide: tasks with their decisions, exploration, capacity overflow.

`FragileModel` scores 0.25: in the review band of `REVIEW_BANDS`, the approve band of
`APPROVE_BANDS`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient

from bastion.settings import Settings
from bastion.store import Database
from bastion.store.tables import ReviewTaskRow
from tests.serving.conftest import APPROVE_BANDS, DECIDE, REVIEW_BANDS, fragile_spec, serving

ROW = {"delay": 0.0, "explode": 0}


def tasks(settings: Settings) -> list[ReviewTaskRow]:
    database = Database(settings.resolved_database_url)
    try:
        with database.transaction() as session:
            rows = list(session.scalars(select(ReviewTaskRow).order_by(ReviewTaskRow.id)))
            session.expunge_all()
            return rows
    finally:
        database.dispose()


def decide_many(client: TestClient, n: int) -> list[dict[str, Any]]:
    response = client.post(DECIDE, json={"instances": [ROW] * n})
    assert response.status_code == 200, response.text
    decisions: list[dict[str, Any]] = response.json()["decisions"]
    return decisions


def test_review_band_creates_a_task_with_the_decision(
    settings: Settings, fragile_token: str
) -> None:
    policy = {"bands": REVIEW_BANDS, "review": {"sla_minutes": 60}}
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        body = client.post(DECIDE, json={"subject_id": "s-9", "features": ROW}).json()
        stored = client.get(f"/v1/decisions/{body['decision_id']}").json()

    (task,) = tasks(settings)
    assert body["outcome"] == "review"
    assert body["policy"]["review"] == {
        "task_id": task.id,
        "reason": "band",
        "sampling_probability": 1.0,
    }
    assert stored["policy"]["review"]["task_id"] == task.id
    assert task.decision_id == body["decision_id"]
    assert task.subject_key == stored["subject_key"]
    assert task.priority == 0.25, "default priority: the score"
    assert task.model_outcome == "approve", "0.25 is nearer the approve edge (0.2) than 0.4"
    assert task.due_at - task.created_at == timedelta(minutes=60)
    assert task.status == "open"


def test_rule_review_and_priority_expression(settings: Settings, fragile_token: str) -> None:
    policy = {
        "rules": [{"name": "all", "when": "true", "outcome": "review", "reason": "CHECK"}],
        "bands": APPROVE_BANDS,
        "review": {"priority": "prediction.score * 100.0 + features.delay"},
    }
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        client.post(DECIDE, json={"features": {"delay": 0.01, "explode": 0}})

    (task,) = tasks(settings)
    assert task.reason == "rule"
    assert task.priority == 25.01
    assert task.model_outcome == "approve"


def test_automatic_decisions_make_no_task(settings: Settings, fragile_token: str) -> None:
    with serving(fragile_spec({"bands": APPROVE_BANDS}), settings, fragile_token) as client:
        decisions = decide_many(client, 10)

    assert {d["outcome"] for d in decisions} == {"approve"}
    assert all(d["policy"]["review"] is None for d in decisions)
    assert tasks(settings) == []


def _explored(settings: Settings, token: str, seed: int) -> list[int]:
    policy = {"bands": APPROVE_BANDS, "review": {"exploration": 0.3, "exploration_seed": seed}}
    with serving(fragile_spec(policy), settings, token) as client:
        decisions = decide_many(client, 200)
    assert {d["outcome"] for d in decisions} == {"approve"}, "exploring changes no outcome"
    return [i for i, d in enumerate(decisions) if d["policy"]["review"] is not None]


def test_exploration_samples_automatic_decisions_with_their_probability(
    settings: Settings, fragile_token: str
) -> None:
    explored = _explored(settings, fragile_token, seed=7)

    sampled = tasks(settings)
    assert 30 <= len(explored) <= 90, "about 30 % of 200"
    assert len(sampled) == len(explored)
    assert {t.reason for t in sampled} == {"exploration"}
    assert {t.sampling_probability for t in sampled} == {0.3}
    assert {t.model_outcome for t in sampled} == {"approve"}
    assert _explored(settings, fragile_token, seed=7) == explored, "a seed replays the sample"


def test_full_queue_applies_the_overflow_action(settings: Settings, fragile_token: str) -> None:
    policy = {"bands": REVIEW_BANDS, "review": {"capacity": 3}}
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        decisions = decide_many(client, 5)
        metrics = client.get("/metrics").text

    assert [d["outcome"] for d in decisions] == ["review"] * 3 + ["approve"] * 2
    overflowed = decisions[3]["policy"]
    assert overflowed["source"] == "overflow"
    assert overflowed["band"] == "approve"
    assert overflowed["reason"] == "REVIEW_CAPACITY"
    assert overflowed["review"] is None
    assert len(tasks(settings)) == 3
    assert 'bastion_review_overflow_total{deployment="fragile"} 2.0' in metrics
    assert 'bastion_review_tasks_created_total{deployment="fragile",reason="band"} 3.0' in metrics


def test_capacity_counts_tasks_already_in_the_database(
    settings: Settings, fragile_token: str
) -> None:
    policy = {"bands": REVIEW_BANDS, "review": {"capacity": 2, "overflow": "decline"}}
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        decide_many(client, 2)
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        (after_restart,) = decide_many(client, 1)

    assert after_restart["outcome"] == "decline"
    assert after_restart["policy"]["source"] == "overflow"
    assert len(tasks(settings)) == 2
