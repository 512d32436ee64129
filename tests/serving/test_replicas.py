"""Two `bastion serve` replicas over one database: keys reach both, revocation within 1 s.

Each run covers one way a change travels between replicas:
- PostgreSQL without Redis: LISTEN/NOTIFY;
- SQLite or PostgreSQL with Redis: Redis pub/sub (preferred when both are there);
- SQLite alone: no notifications, only the periodic re-read (every 5 s).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import make_url

from bastion.demo.train import TrainedModel
from bastion.registry import ModelVersion
from bastion.settings import Settings
from bastion.spec import Spec, dump_spec
from bastion.store import Database
from bastion.store.keys import KeyService
from bastion.store.notify import open_change_feed
from tests.credentials import bearer
from tests.support import request_rows, running_servers

pytestmark = pytest.mark.slow

#: how long a change may take to reach every replica, by how it travels
WITHIN_SECONDS = {"notification": 1.0, "periodic re-read": 1.0}


@pytest.fixture(params=["database", "redis"])
def notifications(request: pytest.FixtureRequest) -> str | None:
    """The Redis URL the replicas share, or None to leave notifications to the database."""
    if request.param == "redis":
        url: str = request.getfixturevalue("redis_url")
        return url
    return None


@pytest.fixture
def replica_settings(settings: Settings, notifications: str | None) -> Settings:
    return settings.model_copy(update={"redis_url": notifications})


def _channel(settings: Settings) -> str:
    backend = make_url(settings.resolved_database_url).get_backend_name()
    return "notification" if settings.redis_url or backend != "sqlite" else "periodic re-read"


@pytest.fixture
def keys(replica_settings: Settings, served_version: ModelVersion) -> Iterator[KeyService]:
    """The key service an operator's process uses, announcing on the replicas' feed."""
    database = Database(replica_settings.resolved_database_url)
    feed = open_change_feed(replica_settings.resolved_database_url, replica_settings.redis_url)
    try:
        yield KeyService(database, feed)
    finally:
        feed.close()
        database.dispose()


def _environment(settings: Settings) -> dict[str, str]:
    env = {
        **os.environ,
        "BASTION_HOME": str(settings.home),
        "BASTION_DATABASE_URL": settings.resolved_database_url,
    }
    env.pop("BASTION_REDIS_URL", None)
    if settings.redis_url:
        env["BASTION_REDIS_URL"] = settings.redis_url
    return env


@pytest.fixture
def replicas(
    replica_settings: Settings, spec: Spec, tmp_path: Path, keys: KeyService
) -> Iterator[list[str]]:
    """Two `bastion serve` processes on one database; yields their base URLs."""
    spec_path = tmp_path / "bastion.yaml"
    spec_path.write_text(dump_spec(spec))
    env = _environment(replica_settings)
    with running_servers(spec_path, env, tmp_path) as urls:
        yield urls


@pytest.fixture
def features(credit_model: tuple[Path, TrainedModel]) -> dict[str, Any]:
    return request_rows(credit_model[1], 1)[0]


def _status(url: str, token: str) -> int:
    return httpx.get(f"{url}/v2/models/credit", headers=bearer(token), timeout=5).status_code


def _seconds_until(
    urls: list[str], token: str, status: int, started: float, timeout: float
) -> list[float]:
    """Poll every replica until each answers `status` for `token`: seconds since `started`."""
    took: dict[str, float] = {}
    while len(took) < len(urls) and time.monotonic() - started < timeout + 2:
        for url in urls:
            if url not in took and _status(url, token) == status:
                took[url] = time.monotonic() - started
        time.sleep(0.01)
    assert len(took) == len(urls), f"only {sorted(took)} answered {status} in time"
    return [round(took[url], 3) for url in urls]


def _cli_revoke(settings: Settings, key_id: str) -> None:
    """`bastion keys revoke KEY_ID` in a process of its own, as an operator would run it."""
    subprocess.run(
        [sys.executable, "-m", "bastion", "keys", "revoke", key_id],
        env=_environment(settings),
        check=True,
        capture_output=True,
        timeout=60,
    )


def test_keys_reach_both_replicas_and_revocation_within_the_bound(
    replicas: list[str],
    keys: KeyService,
    replica_settings: Settings,
    features: dict[str, Any],
    record_property: Any,
) -> None:
    channel = _channel(replica_settings)
    within = WITHIN_SECONDS[channel]
    started = time.monotonic()
    by_service = keys.create("predict", deployment="credit", actor="tests")
    by_cli = keys.create("predict", actor="tests")
    appeared = _seconds_until(replicas, by_cli.token, 200, started, within)
    for url in replicas:
        response = httpx.post(
            f"{url}/v1/deployments/credit/decide",
            json={"features": features},
            headers=bearer(by_service.token),
            timeout=10,
        )
        assert response.status_code == 200, response.text

    started = time.monotonic()
    keys.revoke(by_service.key.id, actor="tests")
    revoked = _seconds_until(replicas, by_service.token, 401, started, within)
    _cli_revoke(replica_settings, by_cli.key.id)
    revoked_by_cli = _seconds_until(replicas, by_cli.token, 401, time.monotonic(), within)

    record_property("channel", channel)
    record_property("seconds", {"create": appeared, "revoke": revoked, "cli": revoked_by_cli})
    print(
        f"\n{channel}: new key accepted after {appeared} s; revoked key refused after "
        f"{revoked} s (service), {revoked_by_cli} s after `bastion keys revoke` exited"
    )
    assert max(appeared) < within
    assert max(revoked) < within
    assert max(revoked_by_cli) < within
    assert all(_status(url, by_service.token) == 401 for url in replicas)
