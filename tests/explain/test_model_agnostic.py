"""Permutation and KernelSHAP: any model, a reference sample from the signature, a budget."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bastion.explain import build_explainer
from bastion.explain.background import background_frame
from bastion.explain.config import ExplainConfig
from tests.explain.cases import load
from tests.model_cases import BUILDERS


def test_background_follows_the_signatures_quantiles_and_categories(tmp_path: Path) -> None:
    loaded = load(BUILDERS["lightgbm-categorical-named-classes"](tmp_path), tmp_path)
    signature = loaded.version.input_signature
    frame = background_frame(signature, rows=64)
    f0 = signature.column("f0")
    assert f0 is not None
    assert f0.quantiles is not None
    assert list(frame.columns) == ["f0", "n", "color"]
    assert frame["f0"].median() == pytest.approx(f0.quantiles["p50"], abs=0.1)
    assert set(frame["color"]) == {"blue", "green", "red"}


def test_permutation_on_a_linear_model_recovers_exact_contributions(tmp_path: Path) -> None:
    # for an additive model every order credits each field alike: the result is exact
    loaded = load(BUILDERS["onnx-regression"](tmp_path), tmp_path)
    rows = loaded.records(3)
    sampled = build_explainer(
        loaded.adapter, loaded.version, ExplainConfig(method="permutation")
    ).explain(rows)
    reference = background_frame(loaded.version.input_signature)
    mean = loaded.adapter.predict(reference).mean()
    for row, explanation in zip(rows, sampled, strict=True):
        assert not explanation.truncated
        assert explanation.base_value == pytest.approx(mean, rel=1e-5)
        single = {}
        for field in explanation.contributions:
            switched = reference.assign(**{field: row[field]})
            single[field] = loaded.adapter.predict(switched).mean() - mean
        assert explanation.contributions == pytest.approx(single, abs=1e-4)


def test_kernel_shap_adds_up_and_reports_its_samples(tmp_path: Path) -> None:
    loaded = load(BUILDERS["onnx-columns-zipmap"](tmp_path), tmp_path)
    rows = loaded.records(2)
    explainer = build_explainer(loaded.adapter, loaded.version, ExplainConfig(method="kernel"))
    explanations = explainer.explain(rows)
    assert explainer.method == "kernel"
    for row, explanation in zip(rows, explanations, strict=True):
        assert explanation.additive
        probability = loaded.adapter.predict_records([row], ["f0", "n", "color"])[0, 1]
        assert explanation.margin == pytest.approx(float(probability))
        assert explanation.details["samples"] >= 8


def test_kernel_shap_with_a_tight_budget_is_truncated(tmp_path: Path) -> None:
    loaded = load(BUILDERS["callable-class"](tmp_path), tmp_path)
    config = ExplainConfig(method="kernel", budget_ms=1)
    [explanation] = build_explainer(loaded.adapter, loaded.version, config).explain(
        loaded.records(1)
    )
    assert explanation.truncated
    assert np.isfinite(list(explanation.contributions.values())).all()
