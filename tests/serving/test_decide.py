"""The /v1 decision API, end to end through the ASGI app on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from bastion.demo.data import FEATURES
from bastion.demo.train import TrainedModel
from bastion.registry import ModelVersion
from bastion.server.app import app_for
from bastion.settings import Settings
from bastion.spec import Spec
from tests.credentials import bearer
from tests.support import request_rows


@pytest.fixture
def client(spec: Spec, settings: Settings, admin_token: str) -> Iterator[TestClient]:
    with TestClient(app_for(spec, settings), headers=bearer(admin_token)) as test_client:
        yield test_client


def _direct_scores(trained: TrainedModel, n: int) -> np.ndarray:
    frame = trained.test_frame[FEATURES].head(n)
    return np.asarray(trained.booster.predict(frame), dtype=np.float64)


def test_decide_one_instance_matches_the_model(
    client: TestClient, credit_model: tuple[Path, TrainedModel], served_version: ModelVersion
) -> None:
    _, trained = credit_model
    features = request_rows(trained, 1)[0]

    response = client.post(
        "/v1/deployments/credit/decide", json={"subject_id": "c-1", "features": features}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["deployment"] == "credit"
    assert body["model"] == {"name": "credit", "version": served_version.version}
    assert body["prediction"]["score"] == pytest.approx(_direct_scores(trained, 1)[0], abs=1e-12)
    assert body["outcome"] == body["prediction"]["label"]
    assert body["latency_ms"] > 0


def test_decide_many_instances_keeps_order(
    client: TestClient, credit_model: tuple[Path, TrainedModel]
) -> None:
    _, trained = credit_model

    response = client.post(
        "/v1/deployments/credit/decide", json={"instances": request_rows(trained, 25)}
    )

    assert response.status_code == 200, response.text
    scores = [d["prediction"]["score"] for d in response.json()["decisions"]]
    np.testing.assert_allclose(scores, _direct_scores(trained, 25), rtol=0, atol=1e-12)


def test_decision_is_stored_and_readable(
    client: TestClient, credit_model: tuple[Path, TrainedModel]
) -> None:
    _, trained = credit_model
    features = request_rows(trained, 1)[0]
    decided = client.post(
        "/v1/deployments/credit/decide", json={"subject_id": "customer-42", "features": features}
    ).json()

    stored = client.get(f"/v1/decisions/{decided['decision_id']}")

    assert stored.status_code == 200
    record = stored.json()
    assert record["outcome"] == decided["outcome"]
    assert record["outputs"] == decided["prediction"]
    assert record["inputs"] == {c: features[c] for c in FEATURES}
    assert record["subject_key"] is not None
    assert "customer-42" not in stored.text


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"features": {"income": 1.0}}, 422, "features.age"),
        ({"features": {"income": "lots"}}, 422, "features.income"),
        ({"instances": []}, 422, "instances"),
        ({"instances": [1, 2]}, 422, "instances[0]"),
        ({"nothing": 1}, 422, "features"),
    ],
)
def test_decide_rejects_bad_input_with_field_errors(
    client: TestClient,
    credit_model: tuple[Path, TrainedModel],
    body: dict[str, Any],
    status: int,
    field: str,
) -> None:
    if "features" in body and "income" in body["features"]:
        features = request_rows(credit_model[1], 1)[0]
        features.update(body["features"])
        if body["features"].get("income") == 1.0:
            del features["age"]
        body = {"features": features}

    response = client.post("/v1/deployments/credit/decide", json=body)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"].endswith("invalid-input")
    assert any(e["field"] == field for e in problem["errors"]), problem


def test_malformed_and_oversized_bodies_are_4xx_and_serving_continues(
    client: TestClient, credit_model: tuple[Path, TrainedModel]
) -> None:
    malformed = client.post(
        "/v1/deployments/credit/decide",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    too_big = client.post(
        "/v1/deployments/credit/decide",
        content=b"[" + b"1," * 3_000_000 + b"1]",
        headers={"content-type": "application/json"},
    )
    not_object = client.post("/v1/deployments/credit/decide", json=[1, 2])
    unknown = client.post("/v1/deployments/nope/decide", json={"features": {}})
    missing = client.get("/v1/decisions/does-not-exist")

    assert malformed.status_code == 400
    assert too_big.status_code == 413
    assert not_object.status_code == 400
    assert unknown.status_code == 404
    assert missing.status_code == 404
    for response in (malformed, too_big, not_object, unknown, missing):
        assert response.headers["content-type"] == "application/problem+json"
    features = request_rows(credit_model[1], 1)[0]
    assert client.post("/v1/deployments/credit/decide", json={"features": features}).is_success


def test_metrics_count_requests_and_batches(
    client: TestClient, credit_model: tuple[Path, TrainedModel], served_version: ModelVersion
) -> None:
    features = request_rows(credit_model[1], 1)[0]
    for _ in range(3):
        client.post("/v1/deployments/credit/decide", json={"features": features})

    text = client.get("/metrics").text

    version = served_version.version
    assert (
        f'bastion_requests_total{{api="decide",deployment="credit",model_version="{version}",status="ok"}} 3.0'
        in text
    )
    assert "bastion_request_duration_seconds_bucket" in text
    assert 'bastion_batch_size_rows_count{deployment="credit"}' in text
    assert 'bastion_model_info{deployment="credit",framework="lightgbm"' in text
    assert "bastion_queue_depth_rows" in text


@pytest.mark.parametrize(
    "path", ["/v1/decisions/%00", "/v1/decisions/not-a-uuid", "/v1/subjects/%00"]
)
def test_nul_bytes_and_non_uuids_in_paths_are_not_server_errors(
    client: TestClient, path: str
) -> None:
    # PostgreSQL refuses NUL bytes in text parameters; such ids never reach a query.
    response = client.get(path)

    assert response.status_code in (200, 404), response.text
    assert client.get("/v2/health/ready").status_code == 200
