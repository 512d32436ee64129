"""A served spec with real LightGBM models registered in a SQLite database under tmp_path.

Three deployments: `credit` serves a binary classifier on three numeric columns and one pandas
`category` column; `numeric` serves one on the three numeric columns only (the shape that
a single 2-D OIP tensor can feed), with string class labels; `amount` a regressor on them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from sqlalchemy import func, select
from starlette.applications import Starlette

from bastion.registry import ArtifactStore, ModelVersion, Registry
from bastion.runtime import LoadOptions, Predictions
from bastion.server.app import app_for
from bastion.settings import Settings
from bastion.spec import Spec, parse_spec
from bastion.store import Database
from bastion.store.tables import DecisionRow
from tests.credentials import bearer, create_key

NUMERIC = ["income", "debt", "age"]
REGIONS = ["north", "south", "east", "west"]
MAX_BODY_BYTES = 64 * 1024
Labels = npt.NDArray[np.int64]
#: class labels of the `numeric` model, to exercise BYTES label outputs
CLASSES: list[str | int] = ["deny", "approve"]

SPEC = f"""
server:
  max_body_bytes: {MAX_BODY_BYTES}
  max_instances: 100
deployments:
  credit:
    model: credit:1
    batching: {{max_batch_size: 16, max_wait_ms: 1}}
  numeric:
    model: numeric:1
  amount:
    model: amount:1
"""


def make_frame(rows: int, seed: int) -> tuple[pd.DataFrame, Labels]:
    """Generated applicants: three numeric columns, a `region` category, and a 0/1 label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.normal(50.0, 15.0, rows),
            "debt": rng.normal(20.0, 8.0, rows),
            "age": rng.integers(18, 80, rows).astype(np.float64),
            "region": pd.Categorical(rng.choice(REGIONS, rows), categories=REGIONS),
        }
    )
    signal = (
        (frame["income"] - 2 * frame["debt"]) / 10
        + (frame["region"] == "north").to_numpy() * 1.5
        + rng.normal(0.0, 1.0, rows)
    )
    return frame, (signal > 0).astype(np.int64).to_numpy()


def _train(
    frame: pd.DataFrame, target: npt.NDArray[Any], path: Path, objective: str = "binary"
) -> Path:
    dataset = lightgbm.Dataset(frame, label=target, params={"verbose": -1})
    params = {"objective": objective, "num_leaves": 7, "min_data_in_leaf": 5, "verbose": -1}
    booster = lightgbm.train(params, dataset, num_boost_round=15)
    booster.save_model(str(path))
    return path


@dataclass
class Served:
    """Everything a server test needs: settings, spec, registered versions and test rows."""

    settings: Settings
    spec: Spec
    registry: Registry
    versions: dict[str, ModelVersion]
    rows: pd.DataFrame
    #: an unscoped predict key: everything the OIP tests call, and nothing more
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return bearer(self.token)

    def app(self) -> Starlette:
        """A fresh app over the same database; use it inside `TestClient(...)` for lifespan."""
        return app_for(self.spec, self.settings)

    def expected(self, deployment: str, frame: pd.DataFrame) -> Predictions:
        """What the deployment's model predicts for `frame`, called directly."""
        version = self.versions[deployment]
        return self.registry.load(version).predict(frame[version.input_signature.names])

    def decision_count(self) -> int:
        with self.registry.database.transaction() as session:
            count = session.scalar(select(func.count()).select_from(DecisionRow))
        return int(count or 0)


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The three trained model files, trained once per test session."""
    folder = tmp_path_factory.mktemp("models")
    frame, labels = make_frame(400, seed=7)
    income = frame["income"].to_numpy() * 10
    return {
        "credit": _train(frame, labels, folder / "credit.txt"),
        "numeric": _train(frame[NUMERIC], labels, folder / "numeric.txt"),
        "amount": _train(frame[NUMERIC], income, folder / "amount.txt", "regression"),
    }


@pytest.fixture
def served(tmp_path: Path, artifacts: dict[str, Path]) -> Iterator[Served]:
    """The models registered in a fresh SQLite database, and the spec serving them."""
    settings = Settings(
        home=tmp_path / ".bastion", database_url=None, secret_key="server-tests-pseudonym-key"
    )
    settings.home.mkdir(parents=True)
    database = Database(settings.resolved_database_url)
    database.migrate()
    registry = Registry(database, ArtifactStore(settings.artifacts_dir))
    sample, _ = make_frame(400, seed=7)
    versions = {
        "credit": registry.register("credit", artifacts["credit"], sample=sample),
        "numeric": registry.register(
            "numeric",
            artifacts["numeric"],
            sample=sample[NUMERIC],
            options=LoadOptions(classes=CLASSES),
        ),
        "amount": registry.register("amount", artifacts["amount"], sample=sample[NUMERIC]),
    }
    rows, _ = make_frame(12, seed=11)
    token = create_key(settings.resolved_database_url, "predict")
    try:
        yield Served(settings, parse_spec(SPEC), registry, versions, rows, token)
    finally:
        database.dispose()
