"""`/v1/deployments/{deployment}/monitor/...` over real stored windows, both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.demo.data import generate_applications
from bastion.demo.train import TrainedModel, train_model
from bastion.settings import Settings
from bastion.store import Database
from tests.credentials import create_key
from tests.monitor.monitoring import ROWS, Logged, log_decisions, serving

WINDOWS = "/v1/deployments/credit/monitor/windows"


@pytest.fixture(scope="module")
def credit_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainedModel]:
    trained = train_model(generate_applications(3000, seed=11), seed=11)
    return trained.save(tmp_path_factory.mktemp("model") / "credit.txt"), trained


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / ".bastion", database_url=database_url)


@pytest.fixture
def logged(settings: Settings, credit_model: tuple[Path, TrainedModel]) -> Iterator[Logged]:
    """Decisions in the log and two stored windows: stable, then shifted."""
    database = Database(settings.resolved_database_url)
    try:
        logged = log_decisions(settings, credit_model, database)
        deployment = logged.spec.deployments["credit"]
        service = logged.service
        service.store(
            service.compute("credit", deployment, start=logged.started, end=logged.middle)
        )
        service.store(service.compute("credit", deployment, rows=ROWS))
        yield logged
    finally:
        database.dispose()


def test_stored_windows_are_listed_newest_first(logged: Logged, settings: Settings) -> None:
    token = create_key(settings.resolved_database_url, "operate")
    with serving(logged.spec, settings, token) as client:
        response = client.get(WINDOWS)
        first = client.get(WINDOWS, params={"limit": 1})

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["deployment"] == "credit"
    newest, older = body["windows"]
    assert newest["ended_at"] > older["ended_at"]
    drifted = [f["feature"] for f in newest["drift"]["features"] if f["drifted"]]
    assert drifted == ["income"]
    assert [f for f in older["drift"]["features"] if f["drifted"]] == []
    assert first.json()["windows"] == [newest]


def test_alert_states_are_readable(logged: Logged, settings: Settings) -> None:
    with serving(logged.spec, settings, logged.token) as client:
        response = client.get("/v1/deployments/credit/monitor/alerts")

    assert response.status_code == 200, response.text
    assert response.json() == {"deployment": "credit", "states": [], "history": []}


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"limit": "0"}, "limit must be a whole number from 1 to 500"),
        ({"limit": "many"}, "limit must be a whole number"),
        ({"since": "2h"}, "unknown query parameter(s): since"),
    ],
)
def test_bad_queries_are_422(
    logged: Logged, settings: Settings, query: dict[str, str], message: str
) -> None:
    with serving(logged.spec, settings, logged.token) as client:
        response = client.get(WINDOWS, params=query)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert message in response.json()["detail"]


def test_unknown_deployments_and_other_roles_are_refused(
    logged: Logged, settings: Settings
) -> None:
    predict = create_key(settings.resolved_database_url, "predict")
    with serving(logged.spec, settings, logged.token) as client:
        unknown = client.get("/v1/deployments/nope/monitor/windows")
    with serving(logged.spec, settings, predict) as client:
        forbidden = client.get(WINDOWS)

    assert unknown.status_code == 404
    assert forbidden.status_code == 403
