"""The statistics agree with scipy where scipy computes the same thing, and stay finite."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats as scipy_stats
from scipy.spatial import distance

from bastion.monitor import stats

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
samples = arrays(np.float64, st.integers(1, 60), elements=finite)
counts = st.lists(st.integers(0, 50), min_size=1, max_size=8)


@settings(max_examples=60, deadline=None)
@given(samples, samples)
def test_sorted_distances_equal_scipy_wasserstein_and_ks(a: np.ndarray, b: np.ndarray) -> None:
    a, b = np.sort(a), np.sort(b)
    wasserstein, d = stats.sorted_distances(a, b)
    p_value = stats.ks_p_value_of(a, b, d)
    with warnings.catch_warnings():  # scipy's own fallback from the exact p-value
        warnings.simplefilter("ignore", RuntimeWarning)
        expected = scipy_stats.ks_2samp(a, b)
    assert wasserstein == pytest.approx(scipy_stats.wasserstein_distance(a, b), rel=1e-9, abs=1e-9)
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p_value == pytest.approx(expected.pvalue, abs=1e-9)


@pytest.mark.parametrize("ties", [False, True])
def test_sorted_distances_use_scipys_asymptotic_p_value_for_large_samples(ties: bool) -> None:
    rng = np.random.default_rng(1)
    a, b = np.sort(rng.normal(size=12_000)), np.sort(rng.normal(0.02, 1, 15_000))
    if ties:  # many equal values, within and across the samples
        a, b = np.round(a, 1), np.round(b, 1)
    assert stats.sorted_distances(a, b)[0] == pytest.approx(
        scipy_stats.wasserstein_distance(a, b), rel=1e-12
    )
    _, d = stats.sorted_distances(a, b)
    p_value = stats.ks_p_value_of(a, b, d)
    expected = scipy_stats.ks_2samp(a, b)
    assert d == pytest.approx(expected.statistic, abs=1e-12)
    assert p_value == pytest.approx(expected.pvalue, abs=1e-9)


@settings(max_examples=60, deadline=None)
@given(counts, counts)
def test_jensen_shannon_equals_scipy_and_is_finite(a: list[int], b: list[int]) -> None:
    size = min(len(a), len(b))
    ref, cur = np.asarray(a[:size], dtype=np.int64), np.asarray(b[:size], dtype=np.int64)
    value = stats.jensen_shannon(ref, cur)
    assert math.isfinite(value)
    assert 0.0 <= value <= math.sqrt(math.log(2)) + 1e-12
    if ref.sum() and cur.sum():
        expected = float(distance.jensenshannon(ref / ref.sum(), cur / cur.sum()))
        if math.isfinite(expected):
            assert value == pytest.approx(expected, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(counts, counts)
def test_counts_statistics_are_never_nan(a: list[int], b: list[int]) -> None:
    size = min(len(a), len(b))
    ref, cur = np.asarray(a[:size], dtype=np.int64), np.asarray(b[:size], dtype=np.int64)
    for value in (
        *stats.chi_square(ref, cur)[1:],
        *stats.z_test(ref, cur),
        stats.cramers_v(ref, cur),
        stats.cohens_h(ref, cur),
        stats.psi(ref, cur),
    ):
        assert not math.isnan(value)


def test_chi_square_scales_reference_counts_to_the_window() -> None:
    ref, cur = np.array([100, 200, 300]), np.array([30, 20, 10])
    expected = scipy_stats.chisquare(cur, ref * cur.sum() / ref.sum())
    assert stats.chi_square(ref, cur) == pytest.approx((expected.statistic, expected.pvalue))


def test_chi_square_calls_an_unseen_value_certain_drift() -> None:
    statistic, p_value = stats.chi_square(np.array([10, 10, 0]), np.array([10, 10, 1]))
    assert statistic == math.inf
    assert p_value == 0.0


def test_one_category_is_no_drift_for_chi_square_and_z_test() -> None:
    assert stats.chi_square(np.array([5]), np.array([9])) == (0.0, 1.0)
    assert stats.z_test(np.array([5, 0]), np.array([9, 0])) == (0.0, 1.0)


def test_z_test_is_the_two_proportion_test() -> None:
    ref, cur = np.array([30, 70]), np.array([50, 50])
    pooled = 80 / 200
    z = abs(0.7 - 0.5) / math.sqrt(pooled * (1 - pooled) * (1 / 100 + 1 / 100))
    assert stats.z_test(ref, cur) == pytest.approx((z, 2 * (1 - scipy_stats.norm.cdf(z))))


def test_psi_fills_empty_bins_like_evidently() -> None:
    ref, cur = np.array([50, 50, 0]), np.array([40, 40, 20])
    r = np.array([0.5, 0.5, 1e-4])
    c = np.array([0.4, 0.4, 0.2])
    assert stats.psi(ref, cur) == pytest.approx(float(np.sum((r - c) * np.log(r / c))))


def test_wasserstein_is_normalised_by_a_floored_reference_std() -> None:
    assert stats.normalised_wasserstein(0.5, 0.0) == pytest.approx(500.0)
    assert stats.normalised_wasserstein(0.5, 2.0) == pytest.approx(0.25)


def test_benjamini_hochberg_equals_scipy() -> None:
    p_values = [0.01, 0.04, 0.03, 0.5]
    expected = scipy_stats.false_discovery_control(p_values)
    assert stats.benjamini_hochberg(p_values) == pytest.approx(list(expected))
    assert stats.benjamini_hochberg([]) == []
