"""Two-sample drift statistics, each defined exactly as Evidently 0.7.23 defines it.

Every function here takes counts or sorted arrays and returns plain floats that are never
NaN: the degenerate inputs that make scipy (and Evidently) return NaN or raise — one
category, a constant column, identical one-value samples — get the value a user would
expect (no difference: distance 0, p-value 1). Counts-based statistics (chi-square,
Jensen-Shannon, Z-test, PSI) are exact from profiles; K-S and Wasserstein are exact from
raw sorted values, and :mod:`bastion.monitor.binned` approximates them from profile bins.

Where the definition follows Evidently (so that results agree to 1e-6):

* Wasserstein: ``scipy.stats.wasserstein_distance(ref, cur) / max(std(ref), 0.001)`` with
  the population standard deviation (``ddof=0``).
* Jensen-Shannon: ``scipy.spatial.distance.jensenshannon`` (natural log) of the two
  shares over the union of observed values; no zero filling.
* chi-square: ``scipy.stats.chisquare(f_obs=current, f_exp=reference * n_cur / n_ref)``
  over the union of values.
* Z-test: two-proportion z-test, two-sided, on "is the first value" indicators.
* PSI: ``sum((r - c) * ln(r / c))`` with zero shares replaced as in Evidently's
  ``get_binned_data`` (min non-zero share / 1e6 when that is ≤ 1e-4, else 1e-4).

Counts-based statistics use the ``scipy.special`` functions scipy's own implementations
call (``chdtrc`` for chi-square, ``ndtr`` for the normal CDF, ``rel_entr`` for
Jensen-Shannon), so results are the same while ``scipy.stats`` - slow to import and
heavy in memory - is only loaded when a K-S p-value or a correction is needed.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from scipy import special

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]

#: Evidently's floor for the reference standard deviation that normalises Wasserstein
WASSERSTEIN_STD_FLOOR = 0.001
#: scipy's ks_2samp computes exact p-values up to this many rows per sample
KS_EXACT_LIMIT = 10_000


def fill_zero_shares(shares: FloatArray) -> FloatArray:
    """Replace zero shares so log ratios stay finite (Evidently's ``feel_zeroes`` rule)."""
    out = np.array(shares, dtype=np.float64)
    positive = out[out > 0]
    if positive.size == 0:
        return out
    smallest = float(positive.min())
    out[out == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return out


def shares(counts: IntArray | FloatArray) -> FloatArray:
    """Counts as shares of their total; all zeros when the total is zero."""
    values = np.asarray(counts, dtype=np.float64)
    total = float(values.sum())
    return values / total if total > 0 else np.zeros_like(values)


def psi(reference: IntArray, current: IntArray) -> float:
    """Population stability index of two count vectors over the same bins.

    >>> round(psi(np.array([50, 50]), np.array([50, 50])), 6)
    0.0
    """
    if reference.sum() == 0 or current.sum() == 0:
        return 0.0
    ref = fill_zero_shares(shares(reference))
    cur = fill_zero_shares(shares(current))
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def jensen_shannon(reference: IntArray | FloatArray, current: IntArray | FloatArray) -> float:
    """Jensen-Shannon distance (natural log, in [0, √ln 2]) of two count vectors."""
    if np.sum(reference) == 0 or np.sum(current) == 0:
        return 0.0
    # scipy.spatial.distance.jensenshannon, step by step
    p, q = shares(reference), shares(current)
    middle = (p + q) / 2.0
    divergence = float(np.sum(special.rel_entr(p, middle)) + np.sum(special.rel_entr(q, middle)))
    # identical shares can round to a tiny negative divergence, whose square root is NaN
    return math.sqrt(divergence / 2.0) if divergence > 0 else 0.0


def chi_square(reference: IntArray, current: IntArray) -> tuple[float, float]:
    """Chi-square goodness of fit of current counts to scaled reference counts: (statistic, p).

    A value never seen in the reference has expected count 0, so the statistic is infinite
    and the p-value 0: any unseen value is, to this test, certain drift.
    """
    n_ref, n_cur = int(reference.sum()), int(current.sum())
    if n_ref == 0 or n_cur == 0 or len(reference) < 2:
        return 0.0, 1.0
    expected = reference.astype(np.float64) * (n_cur / n_ref)
    # scipy.stats.chisquare: sum((obs - exp)^2 / exp), survival function of chi2(k - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        statistic = float(np.sum((current - expected) ** 2 / expected))
    if math.isnan(statistic):
        return 0.0, 1.0
    return statistic, float(special.chdtrc(len(reference) - 1, statistic))


def cramers_v(reference: IntArray, current: IntArray) -> float:
    """Cramér's V of the 2 x k reference/current contingency table: effect size in [0, 1]."""
    table = np.vstack([reference, current]).astype(np.float64)
    table = table[:, table.sum(axis=0) > 0]
    if table.shape[1] < 2 or (table.sum(axis=1) == 0).any():
        return 0.0
    expected = np.outer(table.sum(axis=1), table.sum(axis=0)) / table.sum()
    chi2 = float(np.sum((table - expected) ** 2 / expected))
    return float(min(1.0, math.sqrt(chi2 / table.sum())))


def z_test(reference: IntArray, current: IntArray) -> tuple[float, float]:
    """Two-proportion z-test on the share of the first value: (|z|, two-sided p).

    ``reference`` and ``current`` hold the counts of the same values in the same order;
    Evidently uses the indicator "is not the first sorted value", and as the test is
    symmetric any fixed value gives the same p-value.
    """
    n1, n2 = int(reference.sum()), int(current.sum())
    observed = (reference > 0) | (current > 0)
    if n1 == 0 or n2 == 0 or observed.sum() < 2:
        return 0.0, 1.0
    first = int(np.argmax(observed))
    p1 = (n1 - int(reference[first])) / n1
    p2 = (n2 - int(current[first])) / n2
    pooled = (p1 * n1 + p2 * n2) / (n1 + n2)
    spread = math.sqrt(pooled * (1 - pooled) * (1.0 / n1 + 1.0 / n2))
    if spread == 0.0:
        return 0.0, 1.0
    z = abs(p1 - p2) / spread
    return z, float(2 * (1 - special.ndtr(z)))


def cohens_h(reference: IntArray, current: IntArray) -> float:
    """Cohen's h for the share of the first observed value: effect size beside the z-test."""
    n1, n2 = int(reference.sum()), int(current.sum())
    observed = (reference > 0) | (current > 0)
    if n1 == 0 or n2 == 0 or not observed.any():
        return 0.0
    first = int(np.argmax(observed))
    p1, p2 = reference[first] / n1, current[first] / n2
    return abs(2 * math.asin(math.sqrt(p1)) - 2 * math.asin(math.sqrt(p2)))


def ks_two_sample(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    """Kolmogorov-Smirnov D and two-sided p-value, as ``scipy.stats.ks_2samp`` (method auto)."""
    if reference.size == 0 or current.size == 0:
        return 0.0, 1.0
    from scipy import stats

    with warnings.catch_warnings():
        # scipy warns when it falls back from the exact to the asymptotic p-value
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.ks_2samp(reference, current)
    statistic, p_value = float(result.statistic), float(result.pvalue)
    return statistic, min(1.0, p_value) if math.isfinite(p_value) else 1.0


def ks_p_value(statistic: float, n_reference: int, n_current: int) -> float:
    """Asymptotic two-sided K-S p-value for D, as ``ks_2samp(method="asymp")`` computes it."""
    if n_reference == 0 or n_current == 0:
        return 1.0
    from scipy import stats

    effective = float(np.round(n_reference * n_current / (n_reference + n_current)))
    return float(np.clip(stats.kstwo.sf(statistic, max(effective, 1.0)), 0.0, 1.0))


def sorted_distances(reference: FloatArray, current: FloatArray) -> tuple[float, float]:
    """Wasserstein distance and K-S D of two *sorted* samples in one pass.

    Both empirical CDFs are step functions, constant between consecutive pooled values, so
    Wasserstein is ``sum(|F_ref - F_cur| * gap)`` and D is ``max |F_ref - F_cur|`` over the
    pooled values, which is what scipy computes. The pooled order comes from locating each
    reference value among the current ones (a binary search per reference value), so the
    large side is never searched or sorted again: a million-row window costs a few linear
    passes.
    """
    n, m = reference.size, current.size
    if n == 0 or m == 0:
        return 0.0, 0.0
    # reference values go before equal current values, as a stable sort of (ref, cur) puts them
    at = np.arange(n) + np.searchsorted(current, reference, side="left")
    from_reference = np.zeros(n + m, dtype=bool)
    from_reference[at] = True
    pooled = np.empty(n + m)
    pooled[at] = reference
    pooled[~from_reference] = current
    gaps = np.diff(pooled)
    del pooled
    # F_ref - F_cur after each pooled value but the last (where both are 1), built in place
    difference = np.cumsum(from_reference[:-1], dtype=np.float64)
    del from_reference
    difference *= 1.0 / n + 1.0 / m
    position = np.arange(1, n + m, dtype=np.float64)
    position /= m
    difference -= position
    del position
    np.abs(difference, out=difference)
    wasserstein = float(np.dot(difference, gaps))
    # within a run of equal values the CDFs are only read at the run's end
    ends = gaps > 0
    statistic = float(difference[ends].max()) if ends.any() else 0.0
    return wasserstein, statistic


def ks_p_value_of(reference: FloatArray, current: FloatArray, statistic: float) -> float:
    """The two-sided K-S p-value of sorted samples with distance D, as ``ks_2samp`` gives it.

    Up to scipy's exact-mode limit (10,000 rows per sample) scipy computes it exactly;
    above, it is scipy's asymptotic formula for D.
    """
    if max(reference.size, current.size) <= KS_EXACT_LIMIT:
        return ks_two_sample(reference, current)[1]
    return ks_p_value(statistic, reference.size, current.size)


def normalised_wasserstein(distance: float, reference_std: float) -> float:
    """A Wasserstein distance in units of the reference standard deviation (floored like Evidently)."""
    return distance / max(reference_std, WASSERSTEIN_STD_FLOOR)


def benjamini_hochberg(p_values: list[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (``scipy.stats.false_discovery_control``)."""
    if not p_values:
        return []
    from scipy import stats

    adjusted = stats.false_discovery_control(np.asarray(p_values, dtype=np.float64))
    return [float(min(1.0, p)) for p in np.atleast_1d(adjusted)]
