"""A slow or failing model is answered with a problem, never a 500, and serving goes on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bastion.registry import ArtifactStore, Registry
from bastion.server.app import app_for
from bastion.settings import Settings
from bastion.spec import parse_spec
from bastion.store import Database
from tests.credentials import bearer, create_key


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(home=tmp_path / ".bastion")
    database = Database(settings.resolved_database_url)
    database.migrate()
    Registry(database, ArtifactStore(settings.artifacts_dir)).register(
        "fragile", "tests.serving.fragile_model:FragileModel"
    )
    database.dispose()
    token = create_key(settings.resolved_database_url, "admin")
    spec = parse_spec("deployments:\n  fragile:\n    model: fragile:1\n    model_timeout_ms: 100\n")
    with TestClient(app_for(spec, settings), headers=bearer(token)) as test_client:
        yield test_client


def decide(
    client: TestClient, delay: float = 0.0, explode: int = 0
) -> tuple[int, dict[str, object]]:
    response = client.post(
        "/v1/deployments/fragile/decide", json={"features": {"delay": delay, "explode": explode}}
    )
    return response.status_code, response.json()


def test_failing_model_answers_502_and_keeps_serving(client: TestClient) -> None:
    status, problem = decide(client, explode=1)

    assert status == 502
    assert str(problem["type"]).endswith("model-failure")
    assert "blew up" not in str(problem["detail"]), "model internals stay in the log"
    assert decide(client)[0] == 200


def test_slow_model_answers_504_within_the_timeout(client: TestClient) -> None:
    status, problem = decide(client, delay=0.5)

    assert status == 504
    assert str(problem["type"]).endswith("model-timeout")
    time.sleep(0.5)  # the abandoned call still occupies the model until it returns
    assert decide(client)[0] == 200


def test_failures_are_counted_in_metrics(client: TestClient) -> None:
    decide(client, explode=1)
    decide(client, delay=0.5)

    metrics = client.get("/metrics").text

    assert 'status="model_error"} 1.0' in metrics
    assert 'status="timeout"} 1.0' in metrics
