"""`POST /v1/decisions/{id}/feedback`: labels checked against the decision's model, kept as
history, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from starlette.testclient import TestClient

from bastion.registry import ArtifactStore, Registry
from bastion.review.feedback import feedback_for_decision, list_feedback
from bastion.runtime import LoadOptions
from bastion.server.app import app_for
from bastion.server.openapi_schemas import FEEDBACK
from bastion.serving.ids import uuid7
from bastion.settings import Settings
from bastion.spec import parse_spec
from bastion.store import Database
from bastion.store.tables import DecisionRow
from tests.credentials import bearer, create_key
from tests.server.conftest import CLASSES, NUMERIC, make_frame
from tests.support import problem_body

SPEC = """
deployments:
  credit:
    model: credit:1
  numeric:
    model: numeric:1
  amount:
    model: amount:1
"""
MISSING = "01234567-89ab-7def-8123-456789abcdef"


@dataclass
class FeedbackApi:
    client: TestClient
    database: Database
    predict: dict[str, str]
    predict_id: str
    bound: dict[str, str]
    review: dict[str, str]

    def decision(self, deployment: str, *, age: timedelta = timedelta(hours=1)) -> str:
        """A stored decision of `deployment`'s model, made `age` ago."""
        decision_id = uuid7()
        with self.database.transaction() as session:
            session.add(
                DecisionRow(
                    id=decision_id,
                    created_at=datetime.now(UTC) - age,
                    deployment=deployment,
                    model_name=deployment,
                    model_version=1,
                    subject_key="k1:abc",
                    inputs={"income": 50.0},
                    outputs={"score": 0.4},
                    outcome="approve",
                    latency_ms=1.0,
                    guard=None,
                    policy=None,
                    explanation=None,
                )
            )
        return decision_id

    def post(self, decision_id: str, body: Any, headers: dict[str, str] | None = None) -> Any:
        return self.client.post(
            f"/v1/decisions/{decision_id}/feedback",
            json=body,
            headers=self.predict if headers is None else headers,
        )


@pytest.fixture
def api(tmp_path: Path, database_url: str, artifacts: dict[str, Path]) -> Iterator[FeedbackApi]:
    settings = Settings(
        home=tmp_path / ".bastion", database_url=database_url, secret_key="feedback-api-tests"
    )
    database = Database(database_url)
    database.migrate()
    registry = Registry(database, ArtifactStore(settings.artifacts_dir))
    sample = make_frame(200, seed=3)[0]
    registry.register("credit", artifacts["credit"], sample=sample)
    registry.register(
        "numeric",
        artifacts["numeric"],
        sample=sample[NUMERIC],
        options=LoadOptions(classes=CLASSES),
    )
    registry.register("amount", artifacts["amount"], sample=sample[NUMERIC])
    predict = create_key(database_url, "predict")
    bound = create_key(database_url, "predict", deployment="amount")
    review = create_key(database_url, "review")
    try:
        with TestClient(app_for(parse_spec(SPEC), settings)) as client:
            yield FeedbackApi(
                client,
                database,
                bearer(predict),
                predict.split("_")[1],
                bearer(bound),
                bearer(review),
            )
    finally:
        database.dispose()


def test_a_label_is_stored_with_its_decision_model_and_actor(api: FeedbackApi) -> None:
    decision_id = api.decision("credit")
    response = api.post(decision_id, {"label": 1})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["decision_id"] == decision_id
    assert body["label"] == 1
    assert body["source"] == "api"
    assert body["actor"] == api.predict_id
    assert body["model"] == {"name": "credit", "version": 1}
    assert body["subject_key"] == "k1:abc"
    assert body["earlier_labels"] == 0
    jsonschema_rs.Draft202012Validator(FEEDBACK).validate(body)  # as /openapi.json says
    with api.database.transaction() as session:
        stored = feedback_for_decision(session, decision_id)
    assert [(f.label, f.source, f.sampling_probability) for f in stored] == [(1, "api", None)]


def test_posting_again_keeps_history_and_the_latest_observation_wins(api: FeedbackApi) -> None:
    decision_id = api.decision("credit", age=timedelta(days=400))
    now = datetime.now(UTC)
    later = api.post(decision_id, {"label": "1", "observed_at": now.isoformat()})
    earlier = api.post(
        decision_id, {"label": 0, "observed_at": (now - timedelta(days=270)).isoformat()}
    )
    assert later.status_code == earlier.status_code == 201
    assert earlier.json()["earlier_labels"] == 1
    with api.database.transaction() as session:
        history = feedback_for_decision(session, decision_id)
        newest_first = list_feedback(session, "credit", decision_id=decision_id)
    assert [f.label for f in history] == [1, 0]  # in the order posted
    assert [f.label for f in newest_first] == [1, 0]  # observed last, though posted first


FITTING = [
    ("credit", True, 1),
    ("credit", 0.0, 0),
    ("numeric", "approve", "approve"),
    ("numeric", 0, "deny"),  # 0/1 name the two word classes
    ("amount", 1234.5, 1234.5),
    ("amount", "17", 17.0),
]


def test_labels_fit_the_decisions_task(api: FeedbackApi) -> None:
    for deployment, label, stored in FITTING:
        response = api.post(api.decision(deployment), {"label": label})
        assert response.status_code == 201, response.text
        assert response.json()["label"] == stored


REFUSED = [
    ("credit", {"label": 2}, "not one of the model's classes: 0, 1"),
    ("credit", {"label": "approve"}, "not one of the model's classes"),
    ("numeric", {"label": "maybe"}, "deny, approve (or 0/1 for them)"),
    ("amount", {"label": "lots"}, "must be a finite number"),
    ("amount", {"label": True}, "must be a finite number"),
    ("credit", {"label": None}, "a label is required"),
    ("credit", {}, "the body needs a label"),
    ("credit", {"label": 1, "score": 0.3}, "unknown field(s): score"),
    ("credit", {"label": 1, "observed_at": "yesterday"}, "ISO 8601"),
    ("credit", {"label": 1, "observed_at": 5}, "ISO 8601 time string"),
    ("credit", {"label": 1, "observed_at": "2999-01-01T00:00:00Z"}, "in the future"),
    ("credit", {"label": 1, "observed_at": "2001-01-01T00:00:00Z"}, "before the decision"),
]


def test_bad_labels_are_422_with_a_clear_reason(api: FeedbackApi) -> None:
    for deployment, body, message in REFUSED:
        decision_id = api.decision(deployment)
        problem = problem_body(api.post(decision_id, body), 422)
        assert message in problem["detail"], body
        assert len(problem["detail"]) < 200
        with api.database.transaction() as session:
            assert feedback_for_decision(session, decision_id) == []


def test_unknown_decisions_and_other_deployments_are_404(api: FeedbackApi) -> None:
    assert "no decision" in problem_body(api.post(MISSING, {"label": 1}), 404)["detail"]
    problem_body(api.post("not-a-uuid", {"label": 1}), 404)
    credit = api.decision("credit")
    problem_body(api.post(credit, {"label": 1}, headers=api.bound), 404)
    assert api.post(api.decision("amount"), {"label": 3.0}, headers=api.bound).status_code == 201


def test_only_keys_that_may_send_feedback_can(api: FeedbackApi) -> None:
    decision_id = api.decision("credit")
    problem_body(api.post(decision_id, {"label": 1}, headers=api.review), 403)
    problem_body(api.post(decision_id, {"label": 1}, headers={}), 401)
    malformed = api.client.post(
        f"/v1/decisions/{decision_id}/feedback", content=b"[1]", headers=api.predict
    )
    problem_body(malformed, 400)


def test_feedback_for_a_decision_made_through_the_api(api: FeedbackApi) -> None:
    frame = make_frame(1, seed=5)[0]
    instance = {k: (v.item() if hasattr(v, "item") else v) for k, v in frame.iloc[0].items()}
    made = api.client.post(
        "/v1/deployments/credit/decide", json={"instances": [instance]}, headers=api.predict
    )
    assert made.status_code == 200, made.text
    decision_id = made.json()["decisions"][0]["decision_id"]
    deadline = time.monotonic() + 10
    response = api.post(decision_id, {"label": 0})
    while response.status_code == 404 and time.monotonic() < deadline:
        time.sleep(0.05)  # the decision log writes in the background
        response = api.post(decision_id, {"label": 0})
    assert response.status_code == 201, response.text
