"""Label-based performance: the figures match scikit-learn and the policy's own cost
semantics, intervals are reproducible, weights undo review sampling, and degenerate windows
give defined answers."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import precision_score, recall_score, roc_auc_score

from bastion.errors import InvalidInput
from bastion.monitor.config import Costs
from bastion.monitor.performance import METRICS, bootstrap_iterations, compute_performance
from bastion.policy.bands import ScoreBands
from bastion.policy.calibration import expected_calibration_error, reliability_table
from bastion.policy.tuning import Costs as TuningCosts
from bastion.policy.tuning import ThresholdSearch

BANDS = ScoreBands(approve_below=0.3, decline_at_or_above=0.7)
COSTS = Costs(fp=1, fn=5, review=0.5)

# Scores on a coarse grid so ties (which AUC must handle) are common.
scores_strategy = st.lists(st.integers(0, 20).map(lambda v: v / 20), min_size=4, max_size=60)


def _calibrated_sample(n: int, seed: int) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    scores = rng.beta(1.2, 4.0, n)
    return scores, (rng.random(n) < scores).astype(np.int64)


@settings(max_examples=40, deadline=None)
@given(scores=scores_strategy, seed=st.integers(0, 2**32 - 1))
def test_auc_precision_recall_equal_sklearn(scores: list[float], seed: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, len(scores))
    labels[:2] = [0, 1]  # both classes
    s = np.asarray(scores)
    result = compute_performance(s, labels, bands=BANDS, costs=None, iterations=0)
    assert result["roc_auc"] == pytest.approx(roc_auc_score(labels, s))
    assert result["metrics"]["roc_auc"]["ci"] is None
    for name, threshold in (("", 0.7), ("review_", 0.3)):
        flagged = (s >= threshold).astype(int)
        precision = result[f"{name}precision"]
        if flagged.any():
            assert precision == pytest.approx(precision_score(labels, flagged))
        else:
            assert precision is None
            assert result["metrics"][f"{name}precision"]["reason"]
        assert result[f"{name}recall"] == pytest.approx(recall_score(labels, flagged))


@settings(max_examples=40, deadline=None)
@given(scores=scores_strategy, seed=st.integers(0, 2**32 - 1))
def test_intervals_hold_their_estimate_and_weights_of_one_change_nothing(
    scores: list[float], seed: int
) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, len(scores))
    labels[:2] = [0, 1]
    plain = compute_performance(scores, labels, bands=BANDS, costs=COSTS, iterations=40)
    ones = compute_performance(
        scores, labels, bands=BANDS, costs=COSTS, weights=np.ones(len(scores)), iterations=0
    )
    for name in ("roc_auc", "precision", "recall", "review_precision", "review_recall", "cost"):
        entry = plain["metrics"][name]
        if entry["value"] is None:
            continue
        assert ones[name] == pytest.approx(entry["value"])
        if entry["ci"] is not None:
            low, high = entry["ci"]
            assert low <= high
            if name != "roc_auc":
                # Proportions and means: the percentile interval covers the estimate.
                assert low - 1e-12 <= entry["value"] <= high + 1e-12


def test_cost_matches_the_tuning_semantics() -> None:
    scores, labels = _calibrated_sample(500, seed=3)
    result = compute_performance(scores, labels, bands=BANDS, costs=COSTS)
    search = ThresholdSearch(scores, labels, TuningCosts(fp=1, fn=5, review=0.5))
    assert result["cost"] == pytest.approx(search.evaluate(0.3, 0.7).cost_per_case)
    assert result["costs"] == {"fp": 1.0, "fn": 5.0, "review": 0.5}


def test_calibration_figures_are_the_calibration_modules() -> None:
    scores, labels = _calibrated_sample(800, seed=4)
    result = compute_performance(scores, labels, bands=None, costs=None)
    assert result["ece"] == pytest.approx(expected_calibration_error(scores, labels))
    assert result["reliability"] == [b.to_dict() for b in reliability_table(scores, labels)]
    assert result["ece"] < 0.06  # the sample is calibrated by construction


def test_intervals_are_reproducible_and_narrow_with_more_labels() -> None:
    small_s, small_y = _calibrated_sample(300, seed=5)
    large_s, large_y = _calibrated_sample(5000, seed=5)
    first = compute_performance(small_s, small_y, bands=BANDS, costs=COSTS, seed=1)
    again = compute_performance(small_s, small_y, bands=BANDS, costs=COSTS, seed=1)
    large = compute_performance(large_s, large_y, bands=BANDS, costs=COSTS, seed=1)
    assert first == again
    width_small = np.diff(first["metrics"]["roc_auc"]["ci"])[0]
    width_large = np.diff(large["metrics"]["roc_auc"]["ci"])[0]
    assert width_large < width_small / 2
    assert first["bootstrap"] == {"iterations": 200, "seed": 1, "confidence": 0.95}


def test_bootstrap_work_is_bounded() -> None:
    assert bootstrap_iterations(100) == 200
    assert bootstrap_iterations(1_000_000) == 50
    assert bootstrap_iterations(0) == 0


def test_weights_undo_review_sampling() -> None:
    """Labels only for all declines and a 10 % sample of the rest: weighted recall matches
    the whole population's, the unweighted one overstates it."""
    rng = np.random.default_rng(6)
    scores, labels = _calibrated_sample(40_000, seed=6)
    probability = np.where(scores >= 0.7, 1.0, 0.1)
    sampled = rng.random(scores.size) < probability
    truth = compute_performance(scores, labels, bands=BANDS, costs=COSTS, iterations=0)
    s, y, p = scores[sampled], labels[sampled], probability[sampled]
    weighted = compute_performance(s, y, bands=BANDS, costs=COSTS, weights=1 / p, iterations=0)
    unweighted = compute_performance(s, y, bands=BANDS, costs=COSTS, iterations=0)
    assert weighted["weighted"]
    assert not unweighted["weighted"]
    for name in ("recall", "review_recall", "cost", "roc_auc"):
        assert weighted[name] == pytest.approx(truth[name], abs=0.03), name
    assert unweighted["recall"] > truth["recall"] + 0.1


def test_no_labels_one_class_and_no_bands_are_defined_results() -> None:
    empty = compute_performance([], [], bands=BANDS, costs=COSTS)
    assert all(empty[name] is None for name in METRICS)
    assert empty["metrics"]["roc_auc"]["reason"] == "no labelled decisions"
    assert empty["labelled"] == 0

    one_class = compute_performance([0.1, 0.5, 0.8], [0, 0, 0], bands=BANDS, costs=COSTS)
    assert one_class["roc_auc"] is None
    assert one_class["metrics"]["roc_auc"]["reason"] == "needs both classes among the labels"
    assert one_class["recall"] is None
    assert one_class["precision"] == 0.0
    assert one_class["cost"] == pytest.approx((1 * 1 + 0.5 * 1) / 3)

    no_bands = compute_performance([0.1, 0.9], [0, 1], bands=None, costs=COSTS)
    assert no_bands["precision"] is None
    assert no_bands["cost"] is None
    assert no_bands["metrics"]["precision"]["reason"] == "no policy bands"
    assert no_bands["thresholds"] is None
    assert no_bands["roc_auc"] == 1.0

    for result in (empty, one_class, no_bands):
        json.dumps(result, allow_nan=False)


def test_support_counts_the_rows_behind_each_figure() -> None:
    result = compute_performance([0.1, 0.4, 0.75, 0.9], [0, 1, 1, 0], bands=BANDS, costs=None)
    assert result["metrics"]["precision"]["support"] == 2
    assert result["metrics"]["review_precision"]["support"] == 3
    assert result["metrics"]["roc_auc"]["support"] == 4
    assert result["metrics"]["recall"]["support"] == 2
    assert (result["labelled"], result["positives"], result["negatives"]) == (4, 2, 2)


@pytest.mark.parametrize(
    ("scores", "labels", "weights", "message"),
    [
        ([0.1, 0.2], [0, 2], None, "labels must be 0 or 1"),
        ([0.1, 1.2], [0, 1], None, "within \\[0, 1\\]"),
        ([0.1], [0, 1], None, "same length"),
        ([0.1, 0.2], [0, 1], [1.0, 0.0], "weights must be finite and > 0"),
        ([0.1, 0.2], [0, 1], [1.0], "one value per label"),
    ],
)
def test_bad_input_is_refused_clearly(
    scores: list[float], labels: list[int], weights: list[float] | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        compute_performance(scores, labels, bands=BANDS, costs=None, weights=weights)
