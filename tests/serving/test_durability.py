"""A real server process: acknowledged decisions survive SIGKILL; SIGTERM drains and exits 0."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bastion.demo.run import start_server, wait_ready
from bastion.demo.train import TrainedModel
from bastion.serving.decision_log import DecisionLog
from bastion.settings import Settings
from bastion.spec import Spec, dump_spec
from bastion.store import Database
from tests.credentials import bearer
from tests.support import free_port, request_rows


class ServerProcess:
    """`bastion serve` on a free port, with the test's home and database."""

    def __init__(self, settings: Settings, spec_path: Path, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {
            **os.environ,
            "BASTION_HOME": str(settings.home),
            "BASTION_DATABASE_URL": settings.resolved_database_url,
        }
        self.process = start_server(spec_path, self.port, log, env)
        wait_ready(self.url, self.process)

    def stop(self, sig: signal.Signals) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(timeout=60)


@pytest.fixture
def spec_file(spec: Spec, tmp_path: Path) -> Path:
    path = tmp_path / "bastion.yaml"
    path.write_text(dump_spec(spec))
    return path


@pytest.fixture
def bodies(credit_model: tuple[Path, TrainedModel]) -> list[dict[str, Any]]:
    return [{"features": row} for row in request_rows(credit_model[1], 200)]


@pytest.fixture
def server(
    settings: Settings, spec_file: Path, tmp_path: Path, admin_token: str
) -> Iterator[ServerProcess]:
    """The server, started after `admin_token` exists so its key cache holds the key."""
    process = ServerProcess(settings, spec_file, tmp_path / "server.log")
    yield process
    if process.process.poll() is None:
        process.stop(signal.SIGKILL)


async def _hammer(url: str, bodies: list[dict[str, Any]], seconds: float, token: str) -> list[str]:
    """Send decisions from 16 concurrent clients; return the ids the server acknowledged."""
    acknowledged: list[str] = []
    deadline = time.monotonic() + seconds

    async def client_loop(client: httpx.AsyncClient, offset: int) -> None:
        index = offset
        while time.monotonic() < deadline:
            try:
                response = await client.post(
                    f"{url}/v1/deployments/credit/decide", json=bodies[index % len(bodies)]
                )
            except httpx.HTTPError:
                return
            if response.status_code == 200:
                acknowledged.append(response.json()["decision_id"])
            index += 1

    async with httpx.AsyncClient(timeout=10, headers=bearer(token)) as client:
        await asyncio.gather(*(client_loop(client, i) for i in range(16)))
    return acknowledged


def _stored(settings: Settings, ids: list[str], tmp_path: Path) -> list[str]:
    database = Database(settings.resolved_database_url)
    log = DecisionLog(database, tmp_path / "unused-spool")
    try:
        return [i for i in ids if log.get(i) is not None]
    finally:
        database.dispose()


def test_killed_server_loses_no_acknowledged_decision(
    server: ServerProcess,
    settings: Settings,
    spec_file: Path,
    bodies: list[dict[str, Any]],
    tmp_path: Path,
    admin_token: str,
) -> None:
    async def kill_during_traffic() -> list[str]:
        traffic = asyncio.create_task(_hammer(server.url, bodies, 3.0, admin_token))
        await asyncio.sleep(1.5)
        server.process.send_signal(signal.SIGKILL)
        return await traffic

    acknowledged = asyncio.run(kill_during_traffic())
    server.stop(signal.SIGKILL)
    restarted = ServerProcess(settings, spec_file, tmp_path / "server.log")
    try:
        assert len(acknowledged) > 50
        with httpx.Client(base_url=restarted.url, headers=bearer(admin_token)) as client:
            missing = [
                i for i in acknowledged if client.get(f"/v1/decisions/{i}").status_code != 200
            ]
        assert missing == []
    finally:
        restarted.stop(signal.SIGTERM)


def test_sigterm_finishes_in_flight_requests_and_exits_zero(
    server: ServerProcess,
    settings: Settings,
    bodies: list[dict[str, Any]],
    tmp_path: Path,
    admin_token: str,
) -> None:
    async def terminate_during_traffic() -> list[str]:
        traffic = asyncio.create_task(_hammer(server.url, bodies, 2.0, admin_token))
        await asyncio.sleep(1.0)
        server.process.send_signal(signal.SIGTERM)
        return await traffic

    acknowledged = asyncio.run(terminate_during_traffic())

    assert server.stop(signal.SIGTERM) == 0
    assert len(acknowledged) > 20
    assert sorted(_stored(settings, acknowledged, tmp_path)) == sorted(acknowledged)
