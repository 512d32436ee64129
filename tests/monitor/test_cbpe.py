"""CBPE: on the demo model, label-free estimates land near the realised metrics without
concept drift and stay put under it; poorly calibrated scores are calibrated first; the
fitted estimator survives JSON."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.demo.data import FEATURES, LABEL, generate_applications
from bastion.demo.train import train_model
from bastion.errors import InvalidInput
from bastion.monitor.cbpe import CBPE
from bastion.monitor.config import Costs
from bastion.monitor.performance import compute_performance
from bastion.policy.bands import ScoreBands

BANDS = ScoreBands(approve_below=0.1, decline_at_or_above=0.3)
COSTS = Costs(fp=1, fn=5, review=0.3)
Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class Scored:
    reference_scores: Array
    reference_labels: Array
    scores: Array
    labels: Array


@pytest.fixture(scope="module")
def demo() -> Scored:
    """The demo model's scores on its held-out rows (reference) and on fresh applications."""
    model = train_model(generate_applications(20_000, seed=7))
    fresh = generate_applications(5_000, seed=99)
    return Scored(
        reference_scores=np.asarray(model.booster.predict(model.test_frame[FEATURES])),
        reference_labels=model.test_frame[LABEL].to_numpy(),
        scores=np.asarray(model.booster.predict(fresh[FEATURES])),
        labels=fresh[LABEL].to_numpy(),
    )


def _realised(scores: Array, labels: Array) -> dict[str, Any]:
    return compute_performance(scores, labels, bands=BANDS, costs=COSTS, iterations=0)


def test_estimate_is_close_to_the_realised_metrics_without_concept_drift(demo: Scored) -> None:
    cbpe = CBPE.fit(demo.reference_scores, demo.reference_labels)
    assert cbpe.calibrated  # the demo's LightGBM scores are close to probabilities
    estimate = cbpe.estimate(demo.scores, bands=BANDS, costs=COSTS)
    realised = _realised(demo.scores, demo.labels)
    assert estimate["estimate"] is True
    assert estimate["calibrated"] is True
    assert estimate["roc_auc"] == pytest.approx(realised["roc_auc"], abs=0.03)
    for name in ("precision", "recall", "review_precision", "review_recall"):
        assert estimate[name] == pytest.approx(realised[name], abs=0.06), name
    assert estimate["cost"] == pytest.approx(realised["cost"], rel=0.1)
    assert estimate["reasons"] == {}
    holdout = cbpe.reference
    assert holdout["holdout_estimated_roc_auc"] == pytest.approx(
        holdout["holdout_roc_auc"], abs=0.03
    )


def test_estimate_misses_concept_drift_which_the_labels_show(demo: Scored) -> None:
    """Same cases, new outcomes (risk no longer follows the model): the realised AUC
    collapses, the estimate cannot see it. The documented limitation."""
    cbpe = CBPE.fit(demo.reference_scores, demo.reference_labels)
    rng = np.random.default_rng(1)
    drifted = (rng.random(demo.scores.size) < demo.labels.mean()).astype(np.int64)
    estimate = cbpe.estimate(demo.scores, bands=BANDS)
    realised = _realised(demo.scores, drifted)
    assert realised["roc_auc"] < 0.6
    assert estimate["roc_auc"] - realised["roc_auc"] > 0.2


def test_poorly_calibrated_scores_are_calibrated_on_the_reference(demo: Scored) -> None:
    squashed = demo.reference_scores**3  # same order, no longer probabilities
    cbpe = CBPE.fit(squashed, demo.reference_labels)
    assert cbpe.ece_raw > 0.05
    assert cbpe.calibration is not None
    assert cbpe.calibration.method == "isotonic"
    assert cbpe.ece_calibrated is not None
    assert cbpe.ece_calibrated < cbpe.ece_raw
    bands = ScoreBands(approve_below=0.1**3, decline_at_or_above=0.3**3)
    estimate = cbpe.estimate(demo.scores**3, bands=bands)
    realised = compute_performance(
        demo.scores**3, demo.labels, bands=bands, costs=None, iterations=0
    )
    assert estimate["precision"] == pytest.approx(realised["precision"], abs=0.06)
    assert estimate["roc_auc"] == pytest.approx(realised["roc_auc"], abs=0.03)
    raw_precision = float(demo.scores[demo.scores >= 0.3].mean() ** 3)
    assert abs(raw_precision - realised["precision"]) > 0.2  # what the raw scores would say


def test_round_trip_through_json_gives_the_same_estimates(demo: Scored) -> None:
    for scores in (demo.reference_scores, demo.reference_scores**3):
        cbpe = CBPE.fit(scores, demo.reference_labels)
        stored = json.loads(json.dumps(cbpe.to_dict(), allow_nan=False))
        again = CBPE.from_dict(stored)
        assert again == cbpe
        assert again.estimate(scores, bands=BANDS) == cbpe.estimate(scores, bands=BANDS)
    assert 0.75 < cbpe.reference["roc_auc"] < 0.9


def test_undefined_estimates_have_reasons() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random(200)
    cbpe = CBPE.fit(scores, (rng.random(200) < scores).astype(int))
    empty = cbpe.estimate([], bands=BANDS, costs=COSTS)
    assert empty["roc_auc"] is None
    assert empty["cost"] is None
    assert empty["precision"] is None
    assert empty["reasons"]["roc_auc"] == "no decisions"
    none_flagged = cbpe.estimate(
        [0.01, 0.02], bands=ScoreBands(approve_below=0.5, decline_at_or_above=0.99)
    )
    assert none_flagged["precision"] is None
    assert none_flagged["reasons"]["precision"] == "no case at or above the threshold"
    no_bands = cbpe.estimate(scores, bands=None)
    assert no_bands["recall"] is None
    assert no_bands["reasons"]["recall"] == "no policy bands"
    json.dumps([empty, none_flagged, no_bands], allow_nan=False)


def test_bad_references_and_stored_forms_are_refused() -> None:
    with pytest.raises(InvalidInput, match="at least 20 labelled reference cases"):
        CBPE.fit([0.1] * 50 + [0.9] * 5, [0] * 50 + [1] * 5)
    with pytest.raises(InvalidInput, match="version 1"):
        CBPE.from_dict({"calibration": None})
    with pytest.raises(InvalidInput, match="incomplete"):
        CBPE.from_dict({"version": 1, "calibration": None})
    rng = np.random.default_rng(0)
    scores = rng.random(100)
    cbpe = CBPE.fit(scores, (rng.random(100) < scores).astype(int))
    with pytest.raises(InvalidInput, match="within \\[0, 1\\]"):
        cbpe.estimate([0.5, 1.5], bands=BANDS)


@settings(max_examples=30, deadline=None)
@given(
    scores=st.lists(st.floats(0, 1), min_size=1, max_size=50),
    threshold=st.floats(0, 1),
)
def test_expected_rates_bracket_the_obvious(scores: list[float], threshold: float) -> None:
    """At threshold 0 everything is flagged: recall is 1 and precision the mean score;
    expected AUC, when defined, is a proper AUC."""
    cbpe = CBPE(calibration=None, calibrated=True, ece_raw=0.0, ece_calibrated=None)
    everything = cbpe.estimate(scores, bands=ScoreBands(approve_below=0, decline_at_or_above=0))
    if sum(scores) > 0:
        assert everything["recall"] == pytest.approx(1.0)
    assert everything["precision"] == pytest.approx(float(np.mean(scores)))
    some = cbpe.estimate(
        scores, bands=ScoreBands(approve_below=threshold, decline_at_or_above=threshold)
    )
    if some["roc_auc"] is not None:
        assert 0.0 <= some["roc_auc"] <= 1.0
    if some["recall"] is not None:
        assert 0.0 <= some["recall"] <= 1.0 + 1e-12
