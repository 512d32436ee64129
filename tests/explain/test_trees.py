"""TreeSHAP tables on the demo model and on the edge cases of split semantics."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest

from bastion.demo.data import FEATURES, generate_applications
from bastion.demo.train import train_model
from bastion.explain import build_explainer
from bastion.explain.config import ExplainConfig
from bastion.explain.shap_import import shap
from bastion.explain.tree import TreeShapExplainer
from bastion.explain.trees.lightgbm import lightgbm_source
from bastion.explain.trees.tables import MAX_PATH_FEATURES
from bastion.runtime.lightgbm import LightGBMAdapter
from tests.explain.cases import load, records, version_for
from tests.model_cases import BUILDERS


@pytest.fixture(scope="module")
def demo() -> tuple[LightGBMAdapter, list[dict[str, Any]]]:
    model = train_model(generate_applications(3_000, seed=3))
    rows = records(model.test_frame[FEATURES].head(40))
    # missing values, categories the model never saw, and values on split thresholds
    rows[0] |= {"debt_ratio": None, "employment_years": None}
    rows[1] |= {"channel": "fax", "country": "PL"}
    rows[2] |= {"channel": None, "income": 0.0}
    return LightGBMAdapter(model.booster, None), rows


@pytest.mark.filterwarnings("ignore:LightGBM binary classifier:UserWarning")
def test_demo_model_contributions_equal_shap_to_1e6(
    demo: tuple[LightGBMAdapter, list[dict[str, Any]]],
) -> None:
    adapter, rows = demo
    explainer = TreeShapExplainer(lightgbm_source(adapter))
    matrix = lightgbm_source(adapter).encode(rows)
    reference = shap().TreeExplainer(adapter.booster)
    expected = np.asarray(reference.shap_values(matrix))
    explanations = explainer.explain(rows)
    got = np.array([[e.contributions[f] for f in FEATURES] for e in explanations])
    assert explainer.method == "tree_shap"
    assert np.abs(got - expected).max() <= 1e-6
    assert explanations[0].base_value == pytest.approx(float(reference.expected_value), abs=1e-9)


def test_demo_model_margin_is_the_boosters_log_odds(
    demo: tuple[LightGBMAdapter, list[dict[str, Any]]],
) -> None:
    adapter, rows = demo
    explanations = TreeShapExplainer(lightgbm_source(adapter)).explain(rows)
    probability = adapter.predict_records(rows, FEATURES)[:, 1]
    margins = np.array([e.margin for e in explanations])
    assert margins == pytest.approx(np.log(probability / (1 - probability)), abs=1e-9)
    assert all(e.output == "log_odds" and e.target == 1 for e in explanations)


def test_deep_paths_fall_back_to_lightgbms_own_contributions() -> None:
    # a staircase: row j has x_i = 1 for i < j, and targets growing fast enough that each
    # split peels off one row, so one path tests every feature in turn
    n = 16
    frame = pd.DataFrame(
        [[1.0 if i < j else 0.0 for i in range(n)] for j in range(n + 1)],
        columns=[f"x{i}" for i in range(n)],
    )
    params = {
        "objective": "regression",
        "num_leaves": 64,
        "min_data_in_leaf": 1,
        "min_sum_hessian_in_leaf": 0,
        "verbose": -1,
    }
    data = lightgbm.Dataset(frame, 4.0 ** np.arange(n + 1), params={"min_data_in_bin": 1})
    booster = lightgbm.train(params, data, num_boost_round=1)
    explainer = TreeShapExplainer(lightgbm_source(LightGBMAdapter(booster, None)))
    explanations = explainer.explain(records(frame))
    native = np.asarray(booster.predict(frame, pred_contrib=True))
    assert explainer.method == "tree_shap_native"
    assert f"at most {MAX_PATH_FEATURES}" in (explainer.reason or "")
    got = np.array([[e.contributions[c] for c in frame.columns] for e in explanations])
    assert got == pytest.approx(native[:, :-1], abs=1e-9)
    assert all(e.additive for e in explanations)


@pytest.mark.parametrize("case", ["lightgbm-categorical-named-classes", "xgboost-categorical-ubj"])
def test_missing_and_unseen_categories_follow_the_model(case: str, tmp_path: Path) -> None:
    loaded = load(BUILDERS[case](tmp_path), tmp_path)
    rows: list[dict[str, Any]] = [
        {"f0": 0.3, "n": 2, "color": "purple"},
        {"f0": None, "n": 1, "color": "red"},
        {"f0": -0.5, "n": None, "color": None},
    ]
    explainer = build_explainer(loaded.adapter, loaded.version, ExplainConfig(method="tree"))
    explanations = explainer.explain(rows)
    frame = pd.DataFrame(rows).astype({"f0": float, "n": float})
    probability = loaded.adapter.predict(frame)[:, 1]
    assert explainer.method == "tree_shap"
    for explanation, p in zip(explanations, probability, strict=True):
        assert explanation.margin == pytest.approx(math.log(p / (1 - p)), abs=1e-5)
        assert explanation.additive


def test_tree_method_on_a_linear_model_is_a_spec_error(tmp_path: Path) -> None:
    from bastion.errors import SpecError

    loaded = load(BUILDERS["sklearn-binary"](tmp_path), tmp_path)
    with pytest.raises(SpecError, match="not a tree ensemble"):
        build_explainer(loaded.adapter, loaded.version, ExplainConfig(method="tree"))


def test_worker_threads_explain_concurrently_with_the_same_values(
    demo: tuple[LightGBMAdapter, list[dict[str, Any]]],
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    adapter, rows = demo
    explainer = TreeShapExplainer(lightgbm_source(adapter))
    expected = explainer.explain(rows)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda row: explainer.explain([row])[0], rows * 5))
    assert results == expected * 5


def test_a_forest_behind_one_hot_encoding_is_explained_per_request_field() -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    from bastion.runtime.estimator import EstimatorAdapter
    from tests.model_cases import mixed_frame, mixed_target

    frame = mixed_frame()
    frame["color"] = frame["color"].astype(str)
    encode = ColumnTransformer(
        [("num", StandardScaler(), ["f0", "n"]), ("cat", OneHotEncoder(), ["color"])]
    )
    forest = RandomForestClassifier(n_estimators=10, max_depth=4, random_state=0)
    model = make_pipeline(encode, forest).fit(frame, mixed_target(frame))
    adapter = EstimatorAdapter(model, "sklearn")
    explainer = build_explainer(adapter, version_for(frame), ExplainConfig(method="tree"))
    rows = records(frame.head(10))
    explanations = explainer.explain(rows)

    encoded = model[:-1].transform(frame.head(10))
    reference = shap().TreeExplainer(forest)
    expected = np.asarray(reference.shap_values(encoded))[:, :, 1]  # (rows, encoded columns)
    probability = model.predict_proba(frame.head(10))[:, 1]
    assert explainer.method == "tree_shap"
    for i, explanation in enumerate(explanations):
        assert list(explanation.contributions) == ["f0", "n", "color"]
        assert explanation.contributions["f0"] == pytest.approx(expected[i, 0], abs=1e-6)
        assert explanation.contributions["color"] == pytest.approx(expected[i, 2:].sum(), abs=1e-6)
        assert explanation.margin == pytest.approx(probability[i], abs=1e-9)
        assert explanation.output == "probability"
        assert explanation.additive
