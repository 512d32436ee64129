"""A failing or slow model under a policy: rules alone or the fallback decide, answered 200.

`FragileModel` raises for rows with `explode` > 0 and sleeps `delay` seconds; the
deployment's model timeout is 200 ms.
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient

from bastion.settings import Settings
from bastion.store import Database
from bastion.store.tables import ReviewTaskRow
from tests.serving.conftest import APPROVE_BANDS, DECIDE, fragile_spec, serving

POLICY: dict[str, Any] = {
    "rules": [
        {"name": "slow", "when": "features.delay > 0.4", "outcome": "decline", "reason": "SLOW"}
    ],
    "bands": APPROVE_BANDS,
    "fallback": {"outcome": "decline", "reason": "MODEL_DOWN"},
}


def post(client: TestClient, delay: float = 0.0, explode: int = 0) -> dict[str, Any]:
    response = client.post(DECIDE, json={"features": {"delay": delay, "explode": explode}})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_failing_model_is_decided_by_the_fallback_and_flagged(
    settings: Settings, fragile_token: str
) -> None:
    with serving(fragile_spec(POLICY), settings, fragile_token) as client:
        body = post(client, explode=1)
        stored = client.get(f"/v1/decisions/{body['decision_id']}").json()
        healthy = post(client)

    assert body["outcome"] == "decline"
    assert body["fallback"] is True
    assert body["prediction"] == {}
    assert body["policy"]["source"] == "fallback"
    assert body["policy"]["reason"] == "MODEL_DOWN"
    assert stored["policy"]["fallback"] is True
    assert stored["outputs"] == {}
    assert healthy["fallback"] is False, "serving goes on with the model"


def test_timed_out_model_is_decided_by_rules_alone(settings: Settings, fragile_token: str) -> None:
    with serving(fragile_spec(POLICY), settings, fragile_token) as client:
        started = time.perf_counter()
        body = post(client, delay=0.5)
        elapsed = time.perf_counter() - started
        time.sleep(0.4)  # the abandoned call still occupies the model until it returns

    assert elapsed < 0.45, "answered at the timeout, not when the model finished"
    assert body["outcome"] == "decline"
    assert body["fallback"] is True
    assert body["policy"]["source"] == "rule"
    assert body["policy"]["rule"] == "slow"


def test_fallback_review_creates_a_review_task(settings: Settings, fragile_token: str) -> None:
    policy = {**POLICY, "fallback": {"outcome": "review", "reason": "MODEL_DOWN"}}
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        body = post(client, explode=1)

    assert body["outcome"] == "review"
    assert body["policy"]["review"]["reason"] == "fallback"
    database = Database(settings.resolved_database_url)
    with database.transaction() as session:
        task = session.scalars(select(ReviewTaskRow)).one()
        assert task.decision_id == body["decision_id"]
        assert task.reason == "fallback"
        assert task.model_outcome is None, "no model output: nothing the model would decide"
    database.dispose()


def test_fallbacks_are_counted_in_metrics(settings: Settings, fragile_token: str) -> None:
    with serving(fragile_spec(POLICY), settings, fragile_token) as client:
        post(client, explode=1)
        post(client, delay=0.3)
        time.sleep(0.2)
        metrics = client.get("/metrics").text

    assert 'status="model_error"} 1.0' in metrics
    assert 'status="timeout"} 1.0' in metrics
    assert (
        'bastion_decisions_total{deployment="fragile",outcome="decline",source="fallback"} 2.0'
        in metrics
    )
