"""K-S and Wasserstein approximated from two numeric sketches' bins (no raw values).

Windows computed in the background keep only sketches, so these statistics are estimated
from the counts per reference-quantile bin: the CDFs are known exactly at the bin edges,
and assumed linear inside each bin (values spread evenly). The K-S distance evaluated at
the edges is a lower bound of the exact one; with 10 equal-frequency bins it misses
differences inside a decile. Reports mark these statistics as approximate.
"""

from __future__ import annotations

import numpy as np

from bastion.monitor.sketches import NumericSketch
from bastion.monitor.stats import FloatArray, ks_p_value


def _cdf_at_edges(sketch: NumericSketch) -> FloatArray:
    """CDF of the finite values after each bin but the last (at each edge)."""
    counts = np.asarray(sketch.counts, dtype=np.float64)
    cumulative: FloatArray = np.cumsum(counts)[:-1] / counts.sum()
    return cumulative


def binned_ks(reference: NumericSketch, current: NumericSketch) -> tuple[float, float]:
    """K-S D (at the bin edges) and its asymptotic p-value."""
    if reference.count == 0 or current.count == 0 or not reference.edges:
        return 0.0, 1.0
    difference = np.abs(_cdf_at_edges(reference) - _cdf_at_edges(current))
    statistic = float(difference.max()) if difference.size else 0.0
    return statistic, ks_p_value(statistic, reference.count, current.count)


def binned_wasserstein(reference: NumericSketch, current: NumericSketch) -> float:
    """Wasserstein distance between the two piecewise-linear CDFs through the bin edges.

    Values below or above the reference range are spread between the range and the
    extreme observed value, which both sketches record.
    """
    if reference.count == 0 or current.count == 0 or not reference.edges:
        return 0.0
    edges = list(reference.edges)
    low = min(edges[0], _or(reference.min, edges[0]), _or(current.min, edges[0]))
    high = max(edges[-1], _or(reference.max, edges[-1]), _or(current.max, edges[-1]))
    knots = np.asarray([low, *edges, high])
    zero, one = np.zeros(1), np.ones(1)
    gap = np.concatenate((zero, _cdf_at_edges(reference), one)) - np.concatenate(
        (zero, _cdf_at_edges(current), one)
    )
    widths = np.diff(knots)
    start, end = gap[:-1], gap[1:]
    same_sign = start * end >= 0
    # where the CDFs cross inside a segment, |gap| integrates to two triangles
    spread = np.abs(start) + np.abs(end)
    crossing = np.divide(start**2 + end**2, 2 * spread, out=np.zeros_like(spread), where=spread > 0)
    area = np.where(same_sign, np.abs(start + end) / 2, crossing) * widths
    return float(area.sum())


def _or(bound: float | None, fallback: float) -> float:
    return fallback if bound is None else bound
