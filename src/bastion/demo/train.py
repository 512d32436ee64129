"""Train the demo's LightGBM default-risk model and measure it on held-out applications.

Example
-------
>>> from bastion.demo.data import generate_applications
>>> model = train_model(generate_applications(5_000))
>>> sorted(model.metrics)
['brier_score', 'log_loss', 'roc_auc']
>>> path = model.save(Path("model.txt"))  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm
import pandas as pd
from sklearn.metrics import brier_score_loss, log_loss, roc_auc_score
from sklearn.model_selection import train_test_split

from bastion.demo.data import FEATURES, LABEL
from bastion.errors import ArtifactError, InvalidInput

#: share of the rows held out for evaluation
TEST_SIZE = 0.25
NUM_TREES = 100


def _params(seed: int) -> dict[str, Any]:
    return {
        "objective": "binary",
        "num_leaves": 31,
        "learning_rate": 0.05,
        "seed": seed,
        "deterministic": True,
        "force_row_wise": True,
        "num_threads": 1,
        "verbose": -1,
    }


@dataclass(frozen=True)
class TrainedModel:
    """A trained booster with its held-out metrics and the split it was trained on.

    Attributes
    ----------
    booster : lightgbm.Booster
        Binary classifier; ``booster.predict(frame[FEATURES])`` is P(default).
    metrics : dict[str, float]
        ``roc_auc``, ``log_loss`` and ``brier_score`` on `test_frame`.
    train_frame : pandas.DataFrame
        The training rows, columns `FEATURES` only (a reference sample for registering).
    test_frame : pandas.DataFrame
        The held-out rows, columns ``FEATURES + [LABEL]``. Both frames keep the index of
        the frame given to `train_model`, so other columns (``note``) can be joined back.
    """

    booster: lightgbm.Booster
    metrics: dict[str, float]
    train_frame: pd.DataFrame
    test_frame: pd.DataFrame

    def save(self, path: Path) -> Path:
        """Write the booster as LightGBM model text to `path` and return `path`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.booster.save_model(str(path))
        except lightgbm.basic.LightGBMError as exc:
            raise ArtifactError(f"could not write the LightGBM model to {path}: {exc}") from exc
        return path


def train_model(frame: pd.DataFrame, *, seed: int = 7) -> TrainedModel:
    """Train on a stratified 75 % of `frame` and evaluate on the other 25 %.

    Parameters
    ----------
    frame : pandas.DataFrame of shape ``(n_rows, >= 9)``
        Applications as made by `generate_applications`: columns `FEATURES` and `LABEL`;
        other columns are ignored.
    seed : int
        Seeds the split and LightGBM; the same frame and seed give the same model.
    """
    missing = [column for column in [*FEATURES, LABEL] if column not in frame.columns]
    if missing:
        raise InvalidInput(f"frame must have columns {[*FEATURES, LABEL]}, missing {missing}")
    counts = frame[LABEL].value_counts()
    if len(frame) < 40 or counts.size != 2 or int(counts.min()) < 4:
        raise InvalidInput(
            f"frame must hold at least 40 rows and 4 of each label, got {len(frame)} rows "
            f"with label counts {counts.to_dict()}"
        )
    train, test = train_test_split(
        frame[[*FEATURES, LABEL]], test_size=TEST_SIZE, stratify=frame[LABEL], random_state=seed
    )
    data = lightgbm.Dataset(train[FEATURES], label=train[LABEL])
    booster = lightgbm.train(_params(seed), data, num_boost_round=NUM_TREES)
    probability = booster.predict(test[FEATURES])
    metrics = {
        "roc_auc": float(roc_auc_score(test[LABEL], probability)),
        "log_loss": float(log_loss(test[LABEL], probability)),
        "brier_score": float(brier_score_loss(test[LABEL], probability)),
    }
    return TrainedModel(booster, metrics, train[FEATURES], test)
