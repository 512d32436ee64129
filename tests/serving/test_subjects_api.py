"""`GET` and `DELETE /v1/subjects/{id}`: a data subject's export and erasure over HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from starlette.testclient import TestClient

from bastion.demo.train import TrainedModel
from bastion.registry import ModelVersion
from bastion.server.app import app_for
from bastion.settings import Settings
from bastion.spec import Spec, parse_spec
from bastion.store import Database
from bastion.store.tables import DecisionRow
from tests.credentials import bearer, create_key
from tests.support import request_rows


@pytest.fixture
def admin_client(spec: Spec, settings: Settings) -> Iterator[TestClient]:
    token = create_key(settings.resolved_database_url, "admin")
    with TestClient(app_for(spec, settings), headers=bearer(token)) as client:
        yield client


@pytest.fixture
def features(credit_model: tuple[Path, TrainedModel]) -> dict[str, Any]:
    return request_rows(credit_model[1], 1)[0]


def _decide(client: TestClient, subject: str, features: dict[str, Any]) -> str:
    response = client.post(
        "/v1/deployments/credit/decide", json={"subject_id": subject, "features": features}
    )
    assert response.status_code == 200, response.text
    decision_id: str = response.json()["decision_id"]
    return decision_id


def test_delete_subject_erases_only_that_subject(
    admin_client: TestClient, features: dict[str, Any], settings: Settings
) -> None:
    erased = [_decide(admin_client, "jane.doe@example.com", features) for _ in range(3)]
    kept = _decide(admin_client, "john.roe@example.com", features)

    response = admin_client.delete("/v1/subjects/jane.doe@example.com")

    assert response.status_code == 200
    assert response.json()["decisions"] == 3
    for decision_id in erased:
        assert admin_client.get(f"/v1/decisions/{decision_id}").status_code == 404
    assert admin_client.get(f"/v1/decisions/{kept}").status_code == 200
    database = Database(settings.resolved_database_url)
    try:
        with database.transaction() as session:
            everything = repr(session.execute(text("SELECT * FROM audit_events")).all())
    finally:
        database.dispose()
    assert "subject.erased" in everything
    assert "jane.doe" not in everything


def test_get_subject_exports_its_decisions(
    admin_client: TestClient, features: dict[str, Any]
) -> None:
    ids = {_decide(admin_client, "jane.doe@example.com", features) for _ in range(2)}
    _decide(admin_client, "someone.else@example.com", features)

    exported = admin_client.get("/v1/subjects/jane.doe@example.com").json()

    assert {d["decision_id"] for d in exported["decisions"]} == ids


def test_subject_routes_need_an_admin_key(
    spec: Spec, settings: Settings, features: dict[str, Any]
) -> None:
    predict = create_key(settings.resolved_database_url, "predict")
    with TestClient(app_for(spec, settings)) as client:
        anonymous = client.delete("/v1/subjects/jane")
        predictor = client.delete("/v1/subjects/jane", headers=bearer(predict))

    assert anonymous.status_code == 401
    assert predictor.status_code == 403


def test_server_purges_decisions_past_the_deployments_retention(
    settings: Settings, served_version: ModelVersion, features: dict[str, Any]
) -> None:
    spec = parse_spec(
        "deployments:\n  credit:\n    model: credit@production\n    retention_days: 30\n"
    )
    database = Database(settings.resolved_database_url)
    old_id = str(uuid.uuid4())
    with database.transaction() as session:
        session.add(
            DecisionRow(
                id=old_id,
                created_at=datetime.now(UTC) - timedelta(days=31),
                deployment="credit",
                model_name="credit",
                model_version=served_version.version,
                subject_key=None,
                inputs={},
                outputs={},
                outcome=0,
                latency_ms=1.0,
            )
        )
    database.dispose()
    token = create_key(settings.resolved_database_url, "admin")

    with TestClient(app_for(spec, settings), headers=bearer(token)) as client:
        recent = _decide(client, "someone", features)
        deadline = time.monotonic() + 5
        while client.get(f"/v1/decisions/{old_id}").status_code != 404:
            assert time.monotonic() < deadline, "the retention job did not purge in time"
            time.sleep(0.05)
        assert client.get(f"/v1/decisions/{recent}").status_code == 200
