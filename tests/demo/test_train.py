"""The demo model: learnable but not trivial, deterministic, and servable from its file."""

from __future__ import annotations

from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest

from bastion.demo.data import FEATURES, LABEL, generate_applications
from bastion.demo.train import TrainedModel, train_model
from bastion.errors import InvalidInput
from bastion.runtime import LoadOptions, get_format

N_ROWS = 5_000


@pytest.fixture(scope="module")
def applications() -> pd.DataFrame:
    return generate_applications(N_ROWS, seed=7)


@pytest.fixture(scope="module")
def trained(applications: pd.DataFrame) -> TrainedModel:
    return train_model(applications, seed=7)


def test_train_model_auc_is_learnable_but_not_trivial(trained: TrainedModel) -> None:
    assert 0.70 <= trained.metrics["roc_auc"] <= 0.92


def test_train_model_beats_predicting_the_base_rate(trained: TrainedModel) -> None:
    rate = float(trained.test_frame[LABEL].mean())
    base_log_loss = -(rate * np.log(rate) + (1 - rate) * np.log(1 - rate))
    assert set(trained.metrics) == {"roc_auc", "log_loss", "brier_score"}
    assert 0 < trained.metrics["log_loss"] < base_log_loss
    assert 0 < trained.metrics["brier_score"] < rate * (1 - rate)


def test_train_model_splits_rows_into_disjoint_train_and_test_frames(
    trained: TrainedModel, applications: pd.DataFrame
) -> None:
    assert list(trained.train_frame.columns) == FEATURES
    assert list(trained.test_frame.columns) == [*FEATURES, LABEL]
    assert trained.train_frame.index.intersection(trained.test_frame.index).empty
    assert len(trained.train_frame) + len(trained.test_frame) == len(applications)
    assert len(trained.test_frame) == pytest.approx(0.25 * len(applications), abs=1)


def test_train_model_learns_from_the_categorical_columns(trained: TrainedModel) -> None:
    assert trained.booster.feature_name() == FEATURES
    assert trained.booster.num_trees() == 100
    assert trained.booster.pandas_categorical is not None


def test_train_model_same_seed_gives_same_predictions(
    trained: TrainedModel, applications: pd.DataFrame
) -> None:
    again = train_model(applications, seed=7)
    features = trained.test_frame[FEATURES]
    np.testing.assert_array_equal(
        again.booster.predict(features), trained.booster.predict(features)
    )
    assert again.metrics == trained.metrics


def test_trained_model_save_writes_text_that_predicts_the_same(
    trained: TrainedModel, tmp_path: Path
) -> None:
    path = trained.save(tmp_path / "models" / "credit.txt")
    assert path == tmp_path / "models" / "credit.txt"
    assert path.read_text().startswith("tree\nversion=")
    loaded = lightgbm.Booster(model_file=str(path))
    features = trained.test_frame[FEATURES]
    np.testing.assert_allclose(loaded.predict(features), trained.booster.predict(features))


def test_trained_model_file_serves_through_the_lightgbm_adapter(
    trained: TrainedModel, tmp_path: Path
) -> None:
    path = trained.save(tmp_path / "credit.txt")
    adapter = get_format("lightgbm").load(path, LoadOptions())
    features = trained.test_frame[FEATURES]
    probabilities = adapter.predict(features)
    assert adapter.feature_names == FEATURES
    np.testing.assert_allclose(probabilities[:, 1], trained.booster.predict(features))


def test_train_model_rejects_a_frame_without_the_label(applications: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="missing \\['default'\\]"):
        train_model(applications.drop(columns=[LABEL]))


def test_train_model_rejects_a_frame_with_one_class(applications: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="4 of each label"):
        train_model(applications[applications[LABEL] == 0])
