"""A registered tiny credit model and a spec serving it, for serving-layer tests."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from bastion.demo.data import FEATURES, generate_applications
from bastion.demo.train import TrainedModel, train_model
from bastion.registry import ArtifactStore, ModelVersion, Registry
from bastion.server.app import app_for
from bastion.settings import Settings
from bastion.spec import Spec, parse_spec
from bastion.store import Database
from tests.credentials import bearer, create_key


@pytest.fixture(scope="session")
def credit_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainedModel]:
    """A small LightGBM credit model trained once per test session."""
    frame = generate_applications(3000, seed=11)
    trained = train_model(frame, seed=11)
    path = trained.save(tmp_path_factory.mktemp("model") / "credit.txt")
    return path, trained


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(home=tmp_path / ".bastion", database_url=database_url)


@pytest.fixture
def served_version(settings: Settings, credit_model: tuple[Path, TrainedModel]) -> ModelVersion:
    path, trained = credit_model
    database = Database(settings.resolved_database_url)
    database.migrate()
    registry = Registry(database, ArtifactStore(settings.artifacts_dir))
    version = registry.register("credit", path, sample=trained.train_frame[FEATURES])
    registry.set_stage(version.ref, "production")
    database.dispose()
    return version


@pytest.fixture
def spec(served_version: ModelVersion) -> Spec:
    return parse_spec(
        """
deployments:
  credit:
    model: credit@production
    batching: {max_batch_size: 32, max_wait_ms: 1}
"""
    )


@pytest.fixture
def admin_token(settings: Settings, served_version: ModelVersion) -> str:
    """An admin key in the test's database (migrated by `served_version`)."""
    return create_key(settings.resolved_database_url, "admin")


#: the fragile deployment's decide path
DECIDE = "/v1/deployments/fragile/decide"
#: FragileModel's score 0.25 falls in the approve band of these, in the review band of those
APPROVE_BANDS = {"approve_below": 0.3, "decline_at_or_above": 0.6}
REVIEW_BANDS = {"approve_below": 0.2, "decline_at_or_above": 0.4}


@contextmanager
def serving(spec: Spec, settings: Settings, token: str) -> Iterator[TestClient]:
    """A test client of the real app serving `spec`, presenting `token`."""
    with TestClient(app_for(spec, settings), headers=bearer(token)) as client:
        yield client


@pytest.fixture
def fragile_version(settings: Settings) -> ModelVersion:
    """`tests.serving.fragile_model:FragileModel` registered as fragile:1 (score always 0.25;
    fails for rows with `explode` > 0, sleeps `delay` seconds)."""
    database = Database(settings.resolved_database_url)
    database.migrate()
    registry = Registry(database, ArtifactStore(settings.artifacts_dir))
    version = registry.register("fragile", "tests.serving.fragile_model:FragileModel")
    database.dispose()
    return version


@pytest.fixture
def fragile_token(settings: Settings, fragile_version: ModelVersion) -> str:
    return create_key(settings.resolved_database_url, "admin")


def fragile_spec(policy: dict[str, Any] | None, *, timeout_ms: float = 200, **extra: Any) -> Spec:
    """A spec serving fragile:1 as deployment `fragile` with the `policy` section (and any
    `extra` deployment settings, e.g. ``explain``)."""
    deployment: dict[str, Any] = {
        "model": "fragile:1",
        "model_timeout_ms": timeout_ms,
        "batching": {"max_batch_size": 64, "max_wait_ms": 1},
        **extra,
    }
    if policy is not None:
        deployment["policy"] = policy
    return Spec.model_validate({"deployments": {"fragile": deployment}})
