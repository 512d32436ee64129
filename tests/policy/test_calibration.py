"""Reliability tables, ECE and the isotonic / Platt calibration maps."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import InvalidInput
from bastion.policy.calibration import (
    Calibration,
    calibrate,
    expected_calibration_error,
    fit_calibration,
    reliability_table,
)


def _calibrated_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores that are true probabilities: y ~ Bernoulli(s)."""
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 1, n)
    return scores, (rng.uniform(0, 1, n) < scores).astype(int)


def _overconfident_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores pushed towards 0 and 1 compared with the true probability."""
    rng = np.random.default_rng(seed)
    true = rng.uniform(0.05, 0.95, n)
    logit = np.log(true / (1 - true))
    scores = 1 / (1 + np.exp(-3 * logit))
    return scores, (rng.uniform(0, 1, n) < true).astype(int)


def test_reliability_table_bins_counts_and_rates() -> None:
    table = reliability_table([0.05, 0.15, 0.12, 0.95, 1.0], [0, 1, 0, 1, 1], bins=10)

    assert [(b.lower, b.count) for b in table] == [(0.0, 1), (0.1, 2), (0.9, 2)]
    assert table[1].mean_predicted == pytest.approx(0.135)
    assert table[1].observed_rate == 0.5
    assert table[2].observed_rate == 1.0


def test_ece_is_weighted_gap_between_score_and_rate() -> None:
    # bin 0.1: mean 0.1, rate 0.5 (2 rows); bin 0.9: mean 0.9, rate 1.0 (2 rows)
    ece = expected_calibration_error([0.1, 0.1, 0.9, 0.9], [0, 1, 1, 1])

    assert ece == pytest.approx((2 * 0.4 + 2 * 0.1) / 4)


@pytest.mark.parametrize("method", ["isotonic", "platt"])
def test_calibration_reduces_ece_of_overconfident_scores(method: str) -> None:
    scores, labels = _overconfident_sample(3000, seed=1)

    report = calibrate(scores, labels, method)  # type: ignore[arg-type]

    assert report.ece_before > 0.08
    assert report.ece_after < report.ece_before / 2
    assert report.calibration.info["ece_after"] == report.ece_after


def test_isotonic_on_already_calibrated_scores_changes_ece_little() -> None:
    scores, labels = _calibrated_sample(3000, seed=2)

    report = calibrate(scores, labels, "isotonic")

    assert report.ece_before < 0.04
    assert abs(report.ece_after - report.ece_before) < 0.02


def test_platt_recovers_a_known_sigmoid() -> None:
    rng = np.random.default_rng(3)
    scores = rng.uniform(0.01, 0.99, 20000)
    logit = np.log(scores / (1 - scores))
    truth = 1 / (1 + np.exp(-(0.5 * logit - 1.0)))
    labels = (rng.uniform(0, 1, scores.size) < truth).astype(int)

    fitted = fit_calibration(scores, labels, "platt")

    assert fitted.a == pytest.approx(0.5, abs=0.05)
    assert fitted.b == pytest.approx(-1.0, abs=0.05)


_score_lists = st.lists(st.floats(0, 1), min_size=4, max_size=60)
_grid = np.linspace(0, 1, 1001)


def _assert_monotone_in_unit_interval(calibration: Calibration, scores: np.ndarray) -> None:
    out = calibration.transform(np.sort(np.concatenate([_grid, scores])))
    assert np.all(np.diff(out) >= 0)
    assert out.min() >= 0
    assert out.max() <= 1


@settings(max_examples=60, deadline=None)
@given(scores=_score_lists, labels=st.lists(st.integers(0, 1), min_size=4, max_size=60))
def test_fitted_isotonic_is_monotone_and_within_unit_interval(
    scores: list[float], labels: list[int]
) -> None:
    y = np.resize(np.array([0, 1, *labels]), len(scores))

    fitted = fit_calibration(scores, y, "isotonic")

    _assert_monotone_in_unit_interval(fitted, np.array(scores))


@settings(max_examples=60, deadline=None)
@given(scores=_score_lists, a=st.floats(0, 50), b=st.floats(-50, 50))
def test_platt_is_monotone_and_within_unit_interval(
    scores: list[float], a: float, b: float
) -> None:
    platt = Calibration.from_dict({"method": "platt", "a": a, "b": b})

    _assert_monotone_in_unit_interval(platt, np.array(scores))


@settings(max_examples=30, deadline=None)
@given(data=st.data(), method=st.sampled_from(["isotonic", "platt"]))
def test_to_dict_from_dict_round_trips_through_json(data: st.DataObject, method: str) -> None:
    scores, labels = _calibrated_sample(
        data.draw(st.integers(20, 200)), data.draw(st.integers(0, 99))
    )
    fitted = fit_calibration(scores, labels, method)  # type: ignore[arg-type]

    restored = Calibration.from_dict(json.loads(json.dumps(fitted.to_dict())))

    assert restored == fitted
    assert np.array_equal(restored.transform(scores), fitted.transform(scores))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"method": "logistic"}, "method must be one of isotonic, platt"),
        ({"method": "platt", "a": -1.0, "b": 0.0}, "a must be ≥ 0"),
        ({"method": "platt", "a": "x", "b": 0.0}, "finite numbers"),
        ({"method": "isotonic", "x": [0.1, 0.2], "y": [0.5]}, "same, non-zero length"),
        ({"method": "isotonic", "x": [0.1, 0.2], "y": [0.5, 1.5]}, r"within \[0, 1\]"),
        ({"method": "isotonic", "x": [0.3, 0.2], "y": [0.1, 0.2]}, "non-decreasing"),
    ],
)
def test_from_dict_refuses_maps_that_cannot_be_served(
    data: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        Calibration.from_dict(data)


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 0.2], [0, 1, 1], "same length"),
        ([], [], "must not be empty"),
        ([0.1, 1.2], [0, 1], r"within \[0, 1\]"),
        ([0.1, float("nan")], [0, 1], "finite"),
        ([0.1, 0.2], [0, 2], "labels must be 0 or 1"),
        ([0.1, 0.2], ["no", "yes"], "labels must be 0 or 1"),
    ],
)
def test_bad_scores_or_labels_are_named(
    scores: list[float], labels: list[object], message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        reliability_table(scores, labels)


def test_calibrate_needs_two_cases_of_each_class() -> None:
    with pytest.raises(InvalidInput, match="rarer class has 1"):
        calibrate([0.1, 0.2, 0.3, 0.9], [0, 0, 0, 1], "isotonic")


def test_platt_refuses_scores_that_run_against_the_labels() -> None:
    scores, labels = _calibrated_sample(500, seed=4)

    with pytest.raises(InvalidInput, match="check the label column"):
        fit_calibration(scores, 1 - labels, "platt")
