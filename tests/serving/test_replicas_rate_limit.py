"""Two `bastion serve` replicas sharing Redis hold ONE deployment limit between them."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis

from bastion.demo.train import TrainedModel
from bastion.registry import ModelVersion
from bastion.server.ratelimit import KEY_PREFIX
from bastion.settings import Settings
from bastion.spec import parse_spec
from tests.credentials import bearer, create_key
from tests.support import request_rows, running_servers

pytestmark = pytest.mark.slow

RATE = 20
BURST = 20
HAMMER_SECONDS = 2.0
THREADS = 8


@pytest.fixture
def database_url(tmp_path: Path) -> str:
    """One shared SQLite file is enough here: the limit lives in Redis."""
    return f"sqlite:///{tmp_path / 'bastion.db'}"


@pytest.fixture
def deployment(redis_url: str) -> Iterator[str]:
    """A deployment name of this test's own, so its Redis keys are too; deleted after."""
    name = f"credit-{uuid.uuid4().hex[:12]}"
    yield name
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{KEY_PREFIX}*{name}*"):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture
def headers(settings: Settings, served_version: ModelVersion) -> dict[str, str]:
    """An admin key, created before the replicas start so both load it at start-up."""
    return bearer(create_key(settings.resolved_database_url, "admin"))


@pytest.fixture
def replicas(
    settings: Settings,
    headers: dict[str, str],
    redis_url: str,
    deployment: str,
    tmp_path: Path,
) -> Iterator[list[str]]:
    spec_path = tmp_path / "bastion.yaml"
    spec_path.write_text(
        f"deployments:\n  {deployment}:\n    model: credit@production\n"
        f"    limits: {{requests_per_second: {RATE}, burst: {BURST}, backend: redis}}\n"
    )
    parse_spec(spec_path.read_text())
    env = {
        **os.environ,
        "BASTION_HOME": str(settings.home),
        "BASTION_DATABASE_URL": settings.resolved_database_url,
        "BASTION_REDIS_URL": redis_url,
    }
    with running_servers(spec_path, env, tmp_path) as urls:
        yield urls


@pytest.fixture
def features(credit_model: tuple[Path, TrainedModel]) -> dict[str, Any]:
    return request_rows(credit_model[1], 1)[0]


def test_replicas_sharing_redis_hold_one_deployment_limit(
    replicas: list[str],
    headers: dict[str, str],
    deployment: str,
    features: dict[str, Any],
    record_property: Any,
) -> None:
    statuses: Counter[tuple[int, int]] = Counter()
    retry_after: set[str] = set()
    lock = threading.Lock()
    barrier = threading.Barrier(THREADS)

    def hammer(worker: int) -> None:
        with httpx.Client(headers=headers, timeout=10) as client:
            barrier.wait()
            end = time.monotonic() + HAMMER_SECONDS
            sent = worker
            while time.monotonic() < end:
                replica = sent % len(replicas)
                response = client.post(
                    f"{replicas[replica]}/v1/deployments/{deployment}/decide",
                    json={"features": features},
                )
                with lock:
                    statuses[(replica, response.status_code)] += 1
                    if response.status_code == 429:
                        retry_after.add(response.headers["retry-after"])
                sent += 1

    threads = [threading.Thread(target=hammer, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    accepted = sum(n for (_, status), n in statuses.items() if status == 200)
    refused = sum(n for (_, status), n in statuses.items() if status == 429)
    expected = BURST + RATE * HAMMER_SECONDS
    per_replica = [statuses[(i, 200)] for i in range(len(replicas))]
    record_property("rate_limit", {"accepted": accepted, "refused": refused, "expected": expected})
    print(
        f"\n2 replicas, limit {RATE}/s burst {BURST}, {HAMMER_SECONDS:g} s: {accepted} accepted "
        f"(per replica {per_replica}), {refused} refused with 429; expected ≈ {expected:g}"
    )
    assert set(statuses) <= {(i, s) for i in range(len(replicas)) for s in (200, 429)}, statuses
    assert all(n > 0 for n in per_replica), "both replicas served"
    assert refused > accepted, "the hammering really was over the limit"
    assert abs(accepted - expected) <= 0.15 * expected, (accepted, expected)
    assert retry_after == {"1"}
