"""The contract every explainer keeps, checked over every model format Bastion loads.

Like scikit-learn's common estimator checks: one suite, parametrised over the shared tiny
models (`tests/model_cases.py`). Each explanation adds up to the model's own output, is the
same alone or in a batch, names exactly the request fields, and, where shap applies, equals
shap's values.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import xgboost

from bastion.explain import Explanation, build_explainer
from bastion.explain.background import background_frame
from bastion.explain.config import ExplainConfig
from bastion.explain.shap_import import shap
from tests.explain.cases import Loaded, load
from tests.model_cases import BUILDERS

ROWS = 12


@pytest.fixture(params=sorted(BUILDERS))
def loaded(request: pytest.FixtureRequest, tmp_path: Path) -> Loaded:
    return load(BUILDERS[request.param](tmp_path), tmp_path)


def explain(loaded: Loaded, rows: list[dict[str, Any]], **config: Any) -> list[Explanation]:
    explainer = build_explainer(loaded.adapter, loaded.version, ExplainConfig(**config))
    return explainer.explain(rows)


def model_output(loaded: Loaded, row: dict[str, Any], explanation: Explanation) -> float | None:
    """The model's own output for `row` in the explanation's space (None: not recoverable)."""
    predicted = loaded.adapter.predict_records([row], loaded.version.input_signature.names)[0]
    if explanation.output == "value":
        return float(np.reshape(predicted, -1)[0])
    assert explanation.target is not None
    probability = float(predicted[loaded.adapter.classes.index(explanation.target)])
    if explanation.output == "probability":
        return probability
    if len(loaded.adapter.classes) != 2:
        return None  # softmax scores are known from probabilities only up to a constant
    return float(np.log(probability / (1.0 - probability)))


def test_explanations_add_up_to_the_models_own_output(loaded: Loaded) -> None:
    rows = loaded.records(ROWS)
    explanations = explain(loaded, rows)
    assert len(explanations) == len(rows)
    for row, explanation in zip(rows, explanations, strict=True):
        total = explanation.base_value + sum(explanation.contributions.values())
        assert explanation.additive
        assert total == pytest.approx(explanation.margin, abs=1e-9)
        expected = model_output(loaded, row, explanation)
        if expected is not None:
            assert explanation.margin == pytest.approx(expected, rel=1e-5, abs=1e-5)


def test_explanations_name_exactly_the_request_fields(loaded: Loaded) -> None:
    [explanation] = explain(loaded, loaded.records(1))
    assert list(explanation.contributions) == loaded.version.input_signature.names


def test_a_batch_explains_each_row_as_alone(loaded: Loaded) -> None:
    rows = loaded.records(6)
    explainer = build_explainer(loaded.adapter, loaded.version, ExplainConfig())
    together = explainer.explain(rows)
    alone = [explainer.explain([row])[0] for row in rows]
    for one, other in zip(together, alone, strict=True):
        assert one.contributions == pytest.approx(other.contributions, abs=1e-12)
        assert one.base_value == pytest.approx(other.base_value, abs=1e-12)


def test_an_explanation_survives_json(loaded: Loaded) -> None:
    [explanation] = explain(loaded, loaded.records(1))
    assert Explanation.from_dict(explanation.to_dict()) == explanation


def test_an_empty_batch_gives_no_explanations(loaded: Loaded) -> None:
    assert explain(loaded, []) == []


def test_model_agnostic_methods_stop_at_their_budget(loaded: Loaded) -> None:
    row = loaded.records(1)
    explainer = build_explainer(
        loaded.adapter, loaded.version, ExplainConfig(method="permutation", budget_ms=1)
    )
    started = time.perf_counter()
    [explanation] = explainer.explain(row)
    elapsed = time.perf_counter() - started
    assert explanation.method == "permutation"
    assert explanation.truncated
    # one antithetic pair always completes; a pair costs two model calls
    assert explanation.details["permutations"] == 2
    assert elapsed < 1.0
    assert explanation.additive


def shap_values(loaded: Loaded, explainer: Any, rows: list[dict[str, Any]]) -> Any:
    """shap's own TreeExplainer / LinearExplainer values for the explained output, or None."""
    adapter: Any = loaded.adapter
    if explainer.method == "tree_shap":
        source = explainer._source
        matrix = source.encode(rows)
        if loaded.case.format_name == "lightgbm":
            values = shap().TreeExplainer(adapter.booster).shap_values(matrix)
        elif loaded.case.format_name == "xgboost":
            data = xgboost.DMatrix(
                matrix,
                feature_names=source.fields,
                feature_types=adapter.booster.feature_types,
                enable_categorical=True,
            )
            values = shap().TreeExplainer(adapter.booster).shap_values(data)
        else:
            values = (
                shap().TreeExplainer(adapter.estimator).shap_values(loaded.frame.head(len(rows)))
            )
        return np.asarray(values)
    if explainer.method == "linear":
        final = adapter.estimator[-1] if hasattr(adapter.estimator, "steps") else adapter.estimator
        frame = loaded.frame.head(len(rows))
        encode = explainer._encode
        reference = encode(background_frame(loaded.version.input_signature)[explainer.fields])
        values = shap().LinearExplainer(final, reference).shap_values(encode(frame))
        return np.asarray(values)
    return None


# shap announces a change of its LightGBM output shape on every binary model
@pytest.mark.filterwarnings("ignore:LightGBM binary classifier:UserWarning")
def test_exact_methods_equal_shap(loaded: Loaded) -> None:
    rows = loaded.records(ROWS)
    explainer: Any = build_explainer(loaded.adapter, loaded.version, ExplainConfig())
    expected = shap_values(loaded, explainer, rows)
    if expected is None:
        pytest.skip(f"{explainer.method} has no shap counterpart")
    explanations = explainer.explain(rows)
    outputs = len(explainer._source.targets) if explainer.method == "tree_shap" else 1
    for i, explanation in enumerate(explanations):
        k = explainer._source.targets.index(explanation.target) if outputs > 1 else -1
        want = expected[i] if expected.ndim == 2 else expected[i, :, k]
        got = [explanation.contributions[f] for f in explainer.fields]
        assert got == pytest.approx(list(want), abs=1e-6)
