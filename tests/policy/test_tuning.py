"""Threshold tuning: the fast search finds the brute-force optimum and respects the capacity."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.errors import InvalidInput
from bastion.policy.bands import ScoreBands
from bastion.policy.tuning import Costs, ThresholdSearch, tune


def _cost_by_bands(
    scores: np.ndarray, labels: np.ndarray, t_low: float, t_high: float, costs: Costs
) -> tuple[float, int]:
    """Total cost and reviewed count, deciding each case with the serving `ScoreBands`."""
    bands = ScoreBands(approve_below=t_low, decline_at_or_above=t_high)
    total, reviewed = 0.0, 0
    for score, label in zip(scores.tolist(), labels.tolist(), strict=True):
        outcome, _ = bands.outcome(score)
        if outcome == "review":
            total += costs.review
            reviewed += 1
        elif outcome == "approve" and label == 1:
            total += costs.fn
        elif outcome == "decline" and label == 0:
            total += costs.fp
    return total, reviewed


def _brute_force(
    scores: np.ndarray,
    labels: np.ndarray,
    costs: Costs,
    capacity: float | None,
    volume: float | None,
) -> float:
    """The least cost per case over every pair of candidate thresholds, checked one by one."""
    candidates = sorted({*scores.tolist(), 0.0, 1.0})
    n = len(scores)
    best = np.inf
    for t_low, t_high in itertools.combinations_with_replacement(candidates, 2):
        total, reviewed = _cost_by_bands(scores, labels, t_low, t_high, costs)
        if capacity is not None and volume is not None and reviewed * volume > capacity * n:
            continue
        best = min(best, total / n)
    return float(best)


_scores = st.lists(
    st.sampled_from([0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.8, 0.95, 1.0]) | st.floats(0, 1),
    min_size=1,
    max_size=14,
)
_cost = st.floats(0, 20, allow_nan=False)


@settings(max_examples=150, deadline=None)
@given(
    data=st.data(),
    fp=_cost,
    fn=_cost,
    review=_cost,
    capacity=st.none() | st.floats(0, 60),
    volume=st.floats(1, 100),
)
def test_tune_matches_brute_force_minimum(
    data: st.DataObject,
    fp: float,
    fn: float,
    review: float,
    capacity: float | None,
    volume: float,
) -> None:
    scores = np.array(data.draw(_scores))
    labels = np.array(
        data.draw(st.lists(st.integers(0, 1), min_size=len(scores), max_size=len(scores)))
    )
    costs = Costs(fp=fp, fn=fn, review=review)

    result = tune(scores, labels, costs, review_capacity=capacity, daily_volume=volume)

    expected = _brute_force(scores, labels, costs, capacity, volume)
    assert result.chosen.cost_per_case == pytest.approx(expected, rel=1e-9, abs=1e-9)
    total, reviewed = _cost_by_bands(
        scores, labels, result.chosen.t_low, result.chosen.t_high, costs
    )
    assert result.chosen.cost_per_case == pytest.approx(total / len(scores), rel=1e-9, abs=1e-9)
    assert result.chosen.reviewed == reviewed
    if capacity is not None:
        assert reviewed / len(scores) * volume <= capacity + 1e-9


def _sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = rng.uniform(0, 1, n)
    return scores, (rng.uniform(0, 1, n) < scores).astype(int)


def test_capacity_caps_reviews_per_day() -> None:
    scores, labels = _sample(2000, seed=1)

    result = tune(scores, labels, Costs(1, 5, 0.2), review_capacity=150, daily_volume=1000)

    assert result.chosen.reviews_per_day is not None
    assert result.chosen.reviews_per_day <= 150
    unlimited = next(a for a in result.alternatives if a.label == "unlimited review")
    assert unlimited.point.reviews_per_day is not None
    assert unlimited.point.reviews_per_day > 150
    assert not unlimited.within_capacity
    assert unlimited.point.cost_per_case < result.chosen.cost_per_case


def test_cheap_review_with_room_widens_the_review_band() -> None:
    scores, labels = _sample(2000, seed=2)

    cheap = tune(scores, labels, Costs(1, 5, 0.05)).chosen
    dear = tune(scores, labels, Costs(1, 5, 2.0)).chosen

    assert cheap.reviewed > dear.reviewed


def test_capacity_zero_leaves_no_review_band() -> None:
    scores, labels = _sample(500, seed=3)

    chosen = tune(scores, labels, Costs(1, 5, 0.01), review_capacity=0, daily_volume=100).chosen

    assert chosen.reviewed == 0
    assert chosen.t_low == chosen.t_high


def test_cost_table_lists_alternatives_and_neighbours() -> None:
    scores, labels = _sample(500, seed=4)

    result = tune(
        scores,
        labels,
        Costs(1, 5, 0.3),
        review_capacity=40,
        daily_volume=400,
        current=(0.2, 0.6),
    )

    labels_seen = [a.label for a in result.alternatives]
    assert labels_seen[:4] == ["chosen", "current spec", "no review band", "unlimited review"]
    assert "best at 80/day" in labels_seen
    assert {"t_low -1 step", "t_high +1 step"} <= set(labels_seen)
    within = [a.point.cost_per_case for a in result.alternatives if a.within_capacity]
    assert min(within) == pytest.approx(result.chosen.cost_per_case)
    current = result.alternatives[1].point
    assert (current.t_low, current.t_high) == (0.2, 0.6)


def test_operating_point_counts_add_up() -> None:
    scores, labels = _sample(300, seed=5)

    point = tune(scores, labels, Costs(1, 5, 0.3), daily_volume=1000).chosen

    assert point.approved + point.reviewed + point.declined == 300
    assert point.fn_rate == point.false_negatives / labels.sum()
    assert point.fp_rate == point.false_positives / (300 - labels.sum())
    assert point.cost_per_day == pytest.approx(point.cost_per_case * 1000)


def test_all_good_cases_are_all_approved() -> None:
    chosen = tune([0.1, 0.5, 0.9], [0, 0, 0], Costs(1, 5, 0.3)).chosen

    assert (chosen.approved, chosen.cost_per_case, chosen.fn_rate) == (3, 0.0, None)


def test_all_bad_cases_are_all_declined() -> None:
    chosen = tune([0.1, 0.5, 0.9], [1, 1, 1], Costs(1, 5, 0.3)).chosen

    assert (chosen.declined, chosen.cost_per_case, chosen.fp_rate) == (3, 0.0, None)


def test_tied_scores_move_together() -> None:
    result = tune([0.4, 0.4, 0.4, 0.4], [0, 1, 0, 1], Costs(1, 1, 5))

    assert result.chosen.approved in (0, 4)
    assert result.chosen.cost_per_case == 0.5


def test_one_case_is_enough() -> None:
    chosen = tune([0.7], [1], Costs(1, 5, 0.3)).chosen

    assert chosen.declined == 1


def test_evaluate_matches_the_bands_semantics() -> None:
    scores, labels = _sample(200, seed=6)
    search = ThresholdSearch(scores, labels, Costs(1, 5, 0.3))

    point = search.evaluate(0.25, 0.75)

    total, reviewed = _cost_by_bands(scores, labels, 0.25, 0.75, Costs(1, 5, 0.3))
    assert point.cost_per_case == pytest.approx(total / 200)
    assert point.reviewed == reviewed


@pytest.mark.parametrize(
    ("capacity", "volume", "message"),
    [
        (10, None, "needs the expected daily volume"),
        (-1, 10, "review_capacity must be"),
        (None, 0, "daily_volume must be"),
    ],
)
def test_bad_capacity_or_volume_is_named(
    capacity: float | None, volume: float | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        tune([0.1, 0.9], [0, 1], Costs(1, 5, 0.3), review_capacity=capacity, daily_volume=volume)


def test_negative_cost_is_named() -> None:
    with pytest.raises(InvalidInput, match="cost_fn must be a finite number ≥ 0, got -5"):
        Costs(fp=1, fn=-5, review=0.3)


def test_empty_input_is_refused() -> None:
    with pytest.raises(InvalidInput, match="must not be empty"):
        tune([], [], Costs(1, 5, 0.3))
