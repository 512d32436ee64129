"""Drift statistics of one column: every applicable statistic, from raw values or sketches.

Counts-based statistics (PSI, chi-square, Jensen-Shannon, Z-test) are exact from sketches.
K-S and Wasserstein are exact when the raw values of both sides are given and
approximated from the reference-quantile bins otherwise; each :class:`Statistic` says
which. Missing values and ±inf are left out of the tests, as Evidently does, and counted
in PSI's own bins.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from bastion.monitor import stats
from bastion.monitor.binned import binned_ks, binned_wasserstein
from bastion.monitor.methods import Method
from bastion.monitor.sketches import DISCRETE_LIMIT, CategoricalSketch, NumericSketch
from bastion.monitor.stats import FloatArray, IntArray

#: the key under which a categorical sketch's folded new values are compared
UNSEEN = "<unseen>"


@dataclass(frozen=True)
class Statistic:
    """One drift statistic of a column.

    ``score`` is what is compared with the threshold: the p-value of a test (K-S,
    chi-square, Z-test), or the distance itself (Wasserstein, Jensen-Shannon, PSI).
    ``effect_size`` says how large the difference is whatever the sample size: K-S D,
    Cramér's V for chi-square, Cohen's h for the Z-test, the distance for distances.
    ``exact`` is False when the statistic was approximated from sketch bins.
    """

    method: Method
    score: float
    p_value: float | None
    effect_size: float
    exact: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "score": self.score,
            "p_value": self.p_value,
            "effect_size": self.effect_size,
            "exact": self.exact,
        }


@dataclass(frozen=True)
class Sample:
    """The finite raw values of one side of a numeric column, sorted once."""

    values: FloatArray

    @classmethod
    def of(cls, raw: FloatArray) -> Sample:
        data = np.asarray(raw, dtype=np.float64)
        finite = np.isfinite(data)
        return cls(np.sort(data if finite.all() else data[finite]))

    def distinct_count(self) -> int:
        """How many distinct values (one linear pass over the sorted values)."""
        if self.values.size == 0:
            return 0
        return 1 + int(np.count_nonzero(self.values[1:] != self.values[:-1]))

    def distinct(self) -> tuple[FloatArray, IntArray]:
        """Distinct values and their counts, by run lengths of the sorted values."""
        if self.values.size == 0:
            return np.empty(0), np.empty(0, dtype=np.int64)
        starts = np.flatnonzero(np.concatenate(([True], self.values[1:] != self.values[:-1])))
        counts = np.diff(np.append(starts, self.values.size)).astype(np.int64)
        return self.values[starts], counts


def distinct_numeric(
    reference: NumericSketch, current: NumericSketch, raw: tuple[Sample, Sample] | None
) -> int:
    """Distinct finite values in both sides together (more than DISCRETE_LIMIT if unknown)."""
    if raw is not None:
        counts = [raw[0].distinct_count(), raw[1].distinct_count()]
        if max(counts) > DISCRETE_LIMIT:
            return max(counts)
        return int(np.union1d(raw[0].distinct()[0], raw[1].distinct()[0]).size)
    if reference.values is not None and current.values is not None:
        return len(reference.values.keys() | current.values.keys())
    return DISCRETE_LIMIT + 1


def numeric_statistics(
    reference: NumericSketch,
    current: NumericSketch,
    raw: tuple[Sample, Sample] | None,
    chosen: Method,
    everything: bool = True,
) -> list[Statistic]:
    """PSI, K-S and Wasserstein of a numeric column, plus the chosen method if it is another.

    With ``everything`` False only PSI and the chosen method are computed.
    """
    result = [_psi(reference.all_bins(), current.all_bins())]
    ks, wasserstein = everything or chosen == "ks", everything or chosen == "wasserstein"
    if raw is not None and (ks or wasserstein):
        distance, d = stats.sorted_distances(raw[0].values, raw[1].values)
        if ks:
            p_value = stats.ks_p_value_of(raw[0].values, raw[1].values, d)
            result.append(Statistic("ks", p_value, p_value, d))
        if wasserstein:
            normalised = stats.normalised_wasserstein(distance, reference.std)
            result.append(Statistic("wasserstein", normalised, None, normalised))
    elif raw is None:
        if ks:
            d, p_value = binned_ks(reference, current)
            result.append(Statistic("ks", p_value, p_value, d, exact=False))
        if wasserstein:
            approximate = binned_wasserstein(reference, current)
            normalised = stats.normalised_wasserstein(approximate, reference.std)
            result.append(Statistic("wasserstein", normalised, None, normalised, exact=False))
    if chosen in ("chisquare", "jensenshannon", "z"):
        ref_counts, cur_counts, exact = _numeric_counts(reference, current, raw, chosen)
        result.append(_counts_statistic(chosen, ref_counts, cur_counts, exact))
    return result


def _numeric_counts(
    reference: NumericSketch,
    current: NumericSketch,
    raw: tuple[Sample, Sample] | None,
    method: Method,
) -> tuple[IntArray, IntArray, bool]:
    """Counts for a categorical-style test of a numeric column, as Evidently bins it.

    Evidently counts each distinct value, except that Jensen-Shannon over a reference with
    more than 20 distinct values uses Sturges histogram bins over both samples together.
    Without raw values and without exact value counts, the sketch bins stand in.
    """
    if raw is not None:
        ref_values, ref_counts = raw[0].distinct()
        if method == "jensenshannon" and ref_values.size > 20:
            both = np.concatenate((raw[0].values, raw[1].values))
            edges = np.histogram_bin_edges(both, bins="sturges")
            return (
                np.histogram(raw[0].values, edges)[0].astype(np.int64),
                np.histogram(raw[1].values, edges)[0].astype(np.int64),
                True,
            )
        cur_values, cur_counts = raw[1].distinct()
        keys = np.union1d(ref_values, cur_values)
        return _align(keys, ref_values, ref_counts), _align(keys, cur_values, cur_counts), True
    if reference.values is not None and current.values is not None:
        keys_list = sorted(reference.values.keys() | current.values.keys())
        return (
            np.asarray([reference.values.get(k, 0) for k in keys_list], dtype=np.int64),
            np.asarray([current.values.get(k, 0) for k in keys_list], dtype=np.int64),
            True,
        )
    return (
        np.asarray(reference.counts, dtype=np.int64),
        np.asarray(current.counts, dtype=np.int64),
        False,
    )


def _align(keys: FloatArray, values: FloatArray, counts: IntArray) -> IntArray:
    out = np.zeros(keys.size, dtype=np.int64)
    out[np.searchsorted(keys, values)] = counts
    return out


def categorical_counts(
    reference: CategoricalSketch, current: CategoricalSketch
) -> tuple[list[str], IntArray, IntArray]:
    """Counts of both sides over the union of their values (sorted), unseen values apart."""
    keys = sorted(reference.counts.keys() | current.counts.keys())
    if reference.unseen or current.unseen:
        keys.append(UNSEEN)
    ref_counts = {**reference.counts, UNSEEN: reference.unseen}
    cur_counts = {**current.counts, UNSEEN: current.unseen}
    return (
        keys,
        np.asarray([ref_counts.get(k, 0) for k in keys], dtype=np.int64),
        np.asarray([cur_counts.get(k, 0) for k in keys], dtype=np.int64),
    )


def categorical_statistics(
    reference: CategoricalSketch,
    current: CategoricalSketch,
    chosen: Method,
    everything: bool = True,
) -> list[Statistic]:
    """PSI (with a missing bin), chi-square and Jensen-Shannon, plus the Z-test if chosen.

    With ``everything`` False only PSI and the chosen method are computed.
    """
    _, ref_counts, cur_counts = categorical_counts(reference, current)
    with_missing = (
        np.append(ref_counts, reference.missing),
        np.append(cur_counts, current.missing),
    )
    result = [_psi(*with_missing)]
    for method in ("chisquare", "jensenshannon", "z"):
        if method == chosen or (everything and method != "z"):
            result.append(_counts_statistic(method, ref_counts, cur_counts, True))
    return result


def _psi(reference: IntArray, current: IntArray) -> Statistic:
    value = stats.psi(reference, current)
    return Statistic("psi", value, None, value)


def _counts_statistic(
    method: Method, reference: IntArray, current: IntArray, exact: bool
) -> Statistic:
    if method == "chisquare":
        _, p_value = stats.chi_square(reference, current)
        return Statistic("chisquare", p_value, p_value, stats.cramers_v(reference, current), exact)
    if method == "z":
        _, p_value = stats.z_test(reference, current)
        return Statistic("z", p_value, p_value, stats.cohens_h(reference, current), exact)
    if method == "psi":
        return _psi(reference, current)
    distance = stats.jensen_shannon(reference, current)
    return Statistic("jensenshannon", distance, None, distance, exact)
