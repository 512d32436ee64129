"""Fixtures of the monitor service tests: a trained credit model and per-database settings."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bastion.demo.data import generate_applications
from bastion.demo.train import TrainedModel, train_model
from bastion.settings import Settings
from bastion.store import Database
from tests.monitor.monitoring import Logged, log_decisions


@pytest.fixture(scope="session")
def credit_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainedModel]:
    """A small LightGBM credit model."""
    trained = train_model(generate_applications(3000, seed=11), seed=11)
    return trained.save(tmp_path_factory.mktemp("model") / "credit.txt"), trained


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / ".bastion", database_url=database_url)


@pytest.fixture
def logged(settings: Settings, credit_model: tuple[Path, TrainedModel]) -> Iterator[Logged]:
    """Stable then shifted decisions of a monitored credit deployment (`log_decisions`)."""
    database = Database(settings.resolved_database_url)
    try:
        yield log_decisions(settings, credit_model, database)
    finally:
        database.dispose()
