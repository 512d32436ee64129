"""Rate limits: the GCRA limiter contract on both backends, and the middleware's answers."""

from __future__ import annotations

import asyncio
import math
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from starlette.testclient import TestClient

from bastion.registry import ArtifactStore, Registry
from bastion.server.app import app_for
from bastion.server.ratelimit import (
    BackendUnavailable,
    Limiter,
    MemoryLimiter,
    Rate,
    RedisLimiter,
    build_limits,
)
from bastion.settings import Settings
from bastion.spec import parse_spec
from bastion.store import Database
from tests.credentials import bearer, create_key

UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards."""
    prefix = f"bastion-test:{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}*"):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(params=["memory", "redis"])
def make_limiter(request: pytest.FixtureRequest) -> Callable[[], Limiter]:
    """Each contract test runs on both backends (Redis: the real server, a prefix of its own).

    A factory, so the limiter is made inside the test's event loop."""
    if request.param == "memory":
        return MemoryLimiter
    url: str = request.getfixturevalue("redis_url")
    prefix: str = request.getfixturevalue("redis_prefix")
    return lambda: RedisLimiter.from_url(url, prefix=prefix)


def test_limiter_allows_the_burst_then_refuses_with_the_wait(
    make_limiter: Callable[[], Limiter],
) -> None:
    async def scenario() -> list[float]:
        limiter = make_limiter()
        try:
            return [await limiter.acquire("d:credit", Rate(10, 5)) for _ in range(6)]
        finally:
            await limiter.close()

    waits = asyncio.run(scenario())

    assert waits[:5] == [0.0] * 5
    assert 0.05 < waits[5] <= 0.1, waits  # one interval (0.1 s), less the time taken


def test_limiter_allows_the_steady_rate_after_the_burst(
    make_limiter: Callable[[], Limiter],
) -> None:
    async def scenario() -> tuple[float, int]:
        limiter = make_limiter()
        rate = Rate(50, 2)
        try:
            for _ in range(2):
                await limiter.acquire("d:steady", rate)
            wait = await limiter.acquire("d:steady", rate)
            await asyncio.sleep(wait + 0.005)
            after_wait = await limiter.acquire("d:steady", rate)
            # for 0.2 s at 50/s: about 10 more, never the 20 a doubled rate would give
            allowed = 0
            loop = asyncio.get_running_loop()
            end = loop.time() + 0.2
            while loop.time() < end:
                allowed += await limiter.acquire("d:steady", rate) == 0.0
                await asyncio.sleep(0.002)
            return after_wait, allowed
        finally:
            await limiter.close()

    after_wait, allowed = asyncio.run(scenario())

    assert after_wait == 0.0
    assert 8 <= allowed <= 13, allowed


def test_limiter_keeps_keys_apart(make_limiter: Callable[[], Limiter]) -> None:
    async def scenario() -> list[float]:
        limiter = make_limiter()
        try:
            return [
                await limiter.acquire("k:a", Rate(1, 1)),
                await limiter.acquire("k:b", Rate(1, 1)),
                await limiter.acquire("k:a", Rate(1, 1)),
            ]
        finally:
            await limiter.close()

    first, other, again = asyncio.run(scenario())

    assert (first, other) == (0.0, 0.0)
    assert 0.9 < again <= 1.0


def test_memory_limiter_retry_after_follows_the_clock() -> None:
    clock = FakeClock()
    limiter = MemoryLimiter(clock)
    rate = Rate(2, 3)

    async def scenario() -> list[float]:
        waits = [await limiter.acquire("d", rate) for _ in range(4)]
        clock.now += 0.5
        waits.append(await limiter.acquire("d", rate))
        waits.append(await limiter.acquire("d", rate))
        return waits

    assert asyncio.run(scenario()) == [0.0, 0.0, 0.0, 0.5, 0.0, 0.5]


def test_redis_limiter_unreachable_raises_backend_unavailable() -> None:
    async def scenario() -> None:
        limiter = RedisLimiter.from_url(UNREACHABLE_REDIS)
        try:
            await limiter.acquire("d", Rate(1, 1))
        finally:
            await limiter.close()

    with pytest.raises(BackendUnavailable):
        asyncio.run(scenario())


def test_build_limits_refuses_redis_without_a_url() -> None:
    spec = parse_spec(
        "deployments:\n  d:\n    model: m:1\n    limits: {requests_per_second: 5, backend: redis}\n"
    )
    with pytest.raises(Exception, match="needs BASTION_REDIS_URL"):
        build_limits(spec, None)


def _fragile_settings(tmp_path: Path, redis_url: str | None = None) -> Settings:
    settings = Settings(home=tmp_path / ".bastion", redis_url=redis_url)
    database = Database(settings.resolved_database_url)
    database.migrate()
    Registry(database, ArtifactStore(settings.artifacts_dir)).register(
        "fragile", "tests.serving.fragile_model:FragileModel"
    )
    database.dispose()
    return settings


def _client(tmp_path: Path, limits: str, redis_url: str | None = None) -> TestClient:
    settings = _fragile_settings(tmp_path, redis_url)
    spec = parse_spec(f"deployments:\n  fragile:\n    model: fragile:1\n    limits: {limits}\n")
    token = create_key(settings.resolved_database_url, "admin")
    return TestClient(app_for(spec, settings), headers=bearer(token))


def _decide(
    client: TestClient, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str]]:
    response = client.post(
        "/v1/deployments/fragile/decide",
        json={"features": {"delay": 0, "explode": 0}},
        headers=headers,
    )
    return response.status_code, dict(response.headers)


def test_middleware_answers_429_with_retry_after_past_the_deployment_limit(
    tmp_path: Path,
) -> None:
    with _client(tmp_path, "{requests_per_second: 0.5, burst: 2}") as client:
        statuses = [_decide(client)[0] for _ in range(2)]
        response = client.post(
            "/v1/deployments/fragile/decide", json={"features": {"delay": 0, "explode": 0}}
        )
        metrics = client.get("/metrics").text

    assert statuses == [200, 200]
    assert response.status_code == 429
    assert response.headers["content-type"] == "application/problem+json"
    assert str(response.json()["type"]).endswith("rate-limited")
    assert 1 <= int(response.headers["retry-after"]) <= math.ceil(1 / 0.5)
    assert 'bastion_rate_limited_total{deployment="fragile",scope="deployment"} 1.0' in metrics


def test_middleware_limits_each_key_on_its_own(tmp_path: Path) -> None:
    client = _client(tmp_path, "{per_key_requests_per_second: 1, per_key_burst: 1}")
    other = bearer(create_key(f"sqlite:///{tmp_path / '.bastion' / 'bastion.db'}", "predict"))
    with client:
        first, _ = _decide(client)
        second, headers = _decide(client)
        other_key, _ = _decide(client, other)
        metrics = client.get("/metrics").text

    assert (first, second, other_key) == (200, 429, 200)
    assert headers["retry-after"] == "1"
    assert 'bastion_rate_limited_total{deployment="fragile",scope="key"} 1.0' in metrics


def test_middleware_limits_oip_infer_and_versioned_infer(tmp_path: Path) -> None:
    with _client(tmp_path, "{requests_per_second: 0.1, burst: 1}") as client:
        client.post("/v2/models/fragile/infer", json={"inputs": []})
        plain = client.post("/v2/models/fragile/infer", json={"inputs": []})
        versioned = client.post("/v2/models/fragile/versions/1/infer", json={"inputs": []})

    assert (plain.status_code, versioned.status_code) == (429, 429)
    assert int(plain.headers["retry-after"]) >= 1
    assert plain.json()["error"] == plain.json()["detail"], "OIP clients read `error`"


def test_key_over_its_own_limit_does_not_use_up_the_deployment_limit(tmp_path: Path) -> None:
    limits = "{requests_per_second: 0.1, burst: 2, per_key_requests_per_second: 0.1}"
    client = _client(tmp_path, limits)
    other = bearer(create_key(f"sqlite:///{tmp_path / '.bastion' / 'bastion.db'}", "predict"))
    with client:
        statuses = [_decide(client)[0] for _ in range(3)]
        other_status, _ = _decide(client, other)
        last, _ = _decide(client, other)

    assert statuses == [200, 429, 429]
    assert (other_status, last) == (200, 429)


def test_middleware_leaves_other_routes_alone(tmp_path: Path) -> None:
    with _client(tmp_path, "{requests_per_second: 0.1, burst: 1}") as client:
        statuses = [client.get("/v2/models/fragile").status_code for _ in range(3)]

    assert statuses == [200, 200, 200]


def test_unreachable_redis_fails_open_by_default_and_is_counted(tmp_path: Path) -> None:
    limits = "{requests_per_second: 0.1, burst: 1, backend: redis}"
    with _client(tmp_path, limits, UNREACHABLE_REDIS) as client:
        statuses = [_decide(client)[0] for _ in range(3)]
        metrics = client.get("/metrics").text

    assert statuses == [200, 200, 200]
    assert 'bastion_rate_limit_backend_errors_total{deployment="fragile"} 3.0' in metrics


def test_unreachable_redis_fails_closed_with_503_and_retry_after(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    limits = "{requests_per_second: 10, backend: redis, on_backend_error: closed}"
    with _client(tmp_path, limits, UNREACHABLE_REDIS) as client:
        responses = [
            client.post(
                "/v1/deployments/fragile/decide", json={"features": {"delay": 0, "explode": 0}}
            )
            for _ in range(3)
        ]
        metrics = client.get("/metrics").text

    assert [r.status_code for r in responses] == [503, 503, 503]
    assert responses[0].headers["retry-after"] == "1"
    assert str(responses[0].json()["type"]).endswith("rate-limit-unavailable")
    assert 'bastion_rate_limit_backend_errors_total{deployment="fragile"} 3.0' in metrics
    logged = [r for r in caplog.records if "rate-limit store unreachable" in r.getMessage()]
    assert len(logged) == 1, "the log line is rate-limited, not one per request"
