"""Exact linear contributions, summed back from encoded columns to request fields."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, SplineTransformer, StandardScaler

from bastion.errors import SpecError
from bastion.explain import build_explainer
from bastion.explain.background import background_frame
from bastion.explain.config import ExplainConfig
from bastion.registry.versions import ModelVersion
from bastion.runtime.estimator import EstimatorAdapter
from tests.explain.cases import load, records, version_for
from tests.model_cases import BUILDERS, mixed_frame, mixed_target


@pytest.fixture
def one_hot_pipeline() -> tuple[EstimatorAdapter, ModelVersion, pd.DataFrame]:
    frame = mixed_frame()
    frame["color"] = frame["color"].astype(str)
    encode = ColumnTransformer(
        [
            ("num", StandardScaler(), ["f0", "n"]),
            ("cat", OneHotEncoder(handle_unknown="ignore"), ["color"]),
        ]
    )
    model = make_pipeline(encode, LogisticRegression()).fit(frame, mixed_target(frame))
    return EstimatorAdapter(model, "sklearn"), version_for(frame), frame


def test_one_hot_columns_are_summed_back_to_their_field(
    one_hot_pipeline: tuple[EstimatorAdapter, ModelVersion, pd.DataFrame],
) -> None:
    adapter, version, frame = one_hot_pipeline
    explainer = build_explainer(adapter, version, ExplainConfig())
    rows = records(frame.head(5))
    explanations = explainer.explain(rows)

    encoder = adapter.estimator[:-1]
    coef = adapter.estimator[-1].coef_[0]
    names = list(encoder.get_feature_names_out())
    encoded = encoder.transform(frame.head(5))
    mean = encoder.transform(background_frame(version.input_signature)).mean(axis=0)
    per_column = coef * (encoded - mean)
    colors = [i for i, name in enumerate(names) if name.startswith("cat__color_")]
    assert explainer.method == "linear"
    assert len(colors) == 3
    for i, explanation in enumerate(explanations):
        assert list(explanation.contributions) == ["f0", "n", "color"]
        assert explanation.contributions["color"] == pytest.approx(per_column[i, colors].sum())
        assert explanation.contributions["f0"] == pytest.approx(per_column[i, 0])
        assert explanation.output == "log_odds"
        assert explanation.additive


def test_margin_is_the_models_decision_function(
    one_hot_pipeline: tuple[EstimatorAdapter, ModelVersion, pd.DataFrame],
) -> None:
    adapter, version, frame = one_hot_pipeline
    explanations = build_explainer(adapter, version, ExplainConfig()).explain(
        records(frame.head(8))
    )
    expected = adapter.estimator.decision_function(frame.head(8))
    assert [e.margin for e in explanations] == pytest.approx(list(expected), abs=1e-12)


def test_an_unseen_category_contributes_minus_its_reference_share(
    one_hot_pipeline: tuple[EstimatorAdapter, ModelVersion, pd.DataFrame],
) -> None:
    adapter, version, frame = one_hot_pipeline
    row = records(frame.head(1))[0] | {"color": "purple"}
    [explanation] = build_explainer(adapter, version, ExplainConfig()).explain([row])
    assert explanation.additive
    assert explanation.contributions["color"] != 0.0


def test_an_untraceable_step_falls_back_to_permutation() -> None:
    frame = mixed_frame()[["f0", "n"]]
    model = make_pipeline(SplineTransformer(), LogisticRegression())
    model.fit(frame, mixed_target(mixed_frame()))
    adapter = EstimatorAdapter(model, "sklearn")
    explainer = build_explainer(adapter, version_for(frame), ExplainConfig())
    assert explainer.method == "permutation"
    with pytest.raises(SpecError, match="SplineTransformer"):
        build_explainer(adapter, version_for(frame), ExplainConfig(method="linear"))


def test_a_regressors_contributions_are_in_its_own_units(tmp_path: Path) -> None:
    loaded = load(BUILDERS["pickle-regression"](tmp_path), tmp_path)
    explainer = build_explainer(loaded.adapter, loaded.version, ExplainConfig())
    [explanation] = explainer.explain(loaded.records(1))
    model = loaded.adapter.estimator  # type: ignore[attr-defined]
    reference = background_frame(loaded.version.input_signature)
    row = loaded.frame.head(1)
    expected = model.coef_ * (row.to_numpy()[0] - reference.to_numpy().mean(axis=0))
    assert explanation.output == "value"
    assert list(explanation.contributions.values()) == pytest.approx(list(expected))
    assert explanation.base_value == pytest.approx(float(model.predict(reference).mean()))
    assert np.isclose(explanation.margin, model.predict(row)[0])
