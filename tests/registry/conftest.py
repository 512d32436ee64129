"""Small, deterministic LightGBM models to register: trained once per test session."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest

REGIONS = ["east", "north", "south", "west"]


@dataclass(frozen=True)
class TrainedModel:
    path: Path
    booster: Any
    frame: pd.DataFrame


def training_frame(rows: int = 300, seed: int = 7) -> pd.DataFrame:
    """A numeric and a `category` column, plus the label."""
    rng = np.random.default_rng(seed)
    income = rng.normal(50.0, 12.0, rows).round(2)
    region = pd.Categorical(rng.choice(REGIONS, rows), categories=REGIONS)
    label = ((income > 50) ^ (region == "east")).astype(int)
    return pd.DataFrame({"income": income, "region": region, "label": label})


def _train(path: Path, frame: pd.DataFrame, rounds: int) -> TrainedModel:
    params = {
        "objective": "binary",
        "verbose": -1,
        "num_leaves": 7,
        "min_data_in_leaf": 5,
        "seed": 0,
        "deterministic": True,
        "num_threads": 1,
    }
    features = frame[["income", "region"]]
    booster = lightgbm.train(params, lightgbm.Dataset(features, frame["label"]), rounds)
    booster.save_model(str(path))
    return TrainedModel(path, booster, frame)


@pytest.fixture(scope="session")
def lgbm_model(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """A 5-tree binary classifier saved with `Booster.save_model`."""
    folder = tmp_path_factory.mktemp("lgbm")
    return _train(folder / "credit.txt", training_frame(), rounds=5)


@pytest.fixture(scope="session")
def lgbm_model_v2(tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """The same data with one more tree: different bytes, same signature."""
    folder = tmp_path_factory.mktemp("lgbm_v2")
    return _train(folder / "credit.txt", training_frame(), rounds=6)
