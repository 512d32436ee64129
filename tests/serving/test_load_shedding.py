"""A slow model under many concurrent requests: some are shed with 503, none hang."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bastion.registry import ArtifactStore, Registry
from bastion.server.app import app_for
from bastion.settings import Settings
from bastion.spec import parse_spec
from bastion.store import Database
from tests.credentials import bearer, create_key

MAX_QUEUE_ROWS = 3
DELAY_SECONDS = 0.1

SPEC = f"""
deployments:
  fragile:
    model: fragile:1
    batching: {{max_batch_size: 1}}
    model_timeout_ms: 5000
    limits: {{max_queue_rows: {MAX_QUEUE_ROWS}, max_queue_delay_ms: 250}}
"""


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
    with TestClient(app_for(parse_spec(SPEC), settings), headers=bearer(token)) as test_client:
        yield test_client


def _decide(client: TestClient) -> tuple[int, str | None, float]:
    started = time.monotonic()
    response = client.post(
        "/v1/deployments/fragile/decide",
        json={"features": {"delay": DELAY_SECONDS, "explode": 0}},
    )
    return response.status_code, response.headers.get("retry-after"), time.monotonic() - started


def test_slow_model_sheds_excess_requests_with_503_and_retry_after(client: TestClient) -> None:
    service = client.app.state.service  # type: ignore[attr-defined]
    batcher = service.deployments["fragile"].batcher
    deepest = 0

    def decide_and_watch() -> tuple[int, str | None, float]:
        nonlocal deepest
        deepest = max(deepest, batcher.queue_depth)
        return _decide(client)

    with ThreadPoolExecutor(max_workers=24) as pool:
        outcomes = list(pool.map(lambda _: decide_and_watch(), range(48)))
    metrics = client.get("/metrics").text

    statuses = [status for status, _, _ in outcomes]
    shed = [(status, retry) for status, retry, _ in outcomes if status == 503]
    assert set(statuses) == {200, 503}, statuses
    assert all(retry is not None and int(retry) >= 1 for _, retry in shed)
    # every shed request was answered at once; none waited for the model
    assert max(took for status, _, took in outcomes if status == 503) < 1.0
    assert max(took for _, _, took in outcomes) < 5.0, "no request hangs"
    assert deepest <= MAX_QUEUE_ROWS, "the queue never grows past its bound"
    assert batcher.queue_depth == 0
    assert 'bastion_shed_total{deployment="fragile",reason=' in metrics
    assert 'status="shed"' in metrics
