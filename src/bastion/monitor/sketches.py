"""Mergeable summaries of one column: numeric bins and moments, categorical frequencies.

A sketch is built from a batch of raw values and never needs them again: two sketches of
disjoint batches merge into the sketch of their union. Counts, bins, minimum and maximum
merge exactly; the mean and the sum of squared deviations (M2) merge with Chan et al.'s
parallel formula, exact up to floating-point rounding. Numeric bins are fixed by the
reference (its quantiles), so windows built against the same reference line up bin by bin.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from bastion.monitor.stats import FloatArray

#: reference quantile levels kept in a numeric reference sketch (as in the input signature)
QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: exact per-value counts are kept while a numeric column has at most this many values
DISCRETE_LIMIT = 20
#: a categorical sketch counts at most this many distinct values; the rest go to `unseen`
CATEGORY_LIMIT = 1000


@dataclass(frozen=True)
class NumericSketch:
    """Bins, moments and range of a numeric column.

    ``counts`` has ``len(edges) + 1`` entries: below the first edge, one per interval
    between edges (the last one closed), above the last edge. The reference's own values
    never fall below or above; a window's values outside the reference range do.
    Missing values and ±inf are counted apart and excluded from the moments.
    ``values`` holds exact per-value counts while there are at most
    :data:`DISCRETE_LIMIT` distinct finite values (``None`` beyond), which is what lets
    low-cardinality numeric columns use the categorical tests exactly.
    """

    edges: tuple[float, ...]
    counts: tuple[int, ...]
    missing: int = 0
    neg_inf: int = 0
    pos_inf: int = 0
    count: int = 0
    mean: float = 0.0
    m2: float = 0.0
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] = field(default_factory=dict)
    values: dict[float, int] | None = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return self.count + self.missing + self.neg_inf + self.pos_inf

    @property
    def std(self) -> float:
        """Population standard deviation (``ddof=0``, like ``numpy.std``) of finite values."""
        return float(np.sqrt(self.m2 / self.count)) if self.count else 0.0

    def all_bins(self) -> np.ndarray[Any, np.dtype[np.int64]]:
        """Counts of [missing, -inf, +inf, below, intervals..., above], for PSI."""
        head = [self.missing, self.neg_inf, self.pos_inf]
        return np.asarray(head + list(self.counts), dtype=np.int64)

    def merge(self, other: NumericSketch) -> NumericSketch:
        if self.edges != other.edges:
            raise ValueError("numeric sketches with different bin edges cannot be merged")
        count = self.count + other.count
        mean, m2 = self.mean, self.m2
        if other.count:
            delta = other.mean - self.mean
            mean = self.mean + delta * other.count / count
            m2 = self.m2 + other.m2 + delta * delta * self.count * other.count / count
        values: dict[float, int] | None = None
        if self.values is not None and other.values is not None:
            values = dict(self.values)
            for value, n in other.values.items():
                values[value] = values.get(value, 0) + n
            if len(values) > DISCRETE_LIMIT:
                values = None
        return replace(
            self,
            counts=tuple(a + b for a, b in zip(self.counts, other.counts, strict=True)),
            missing=self.missing + other.missing,
            neg_inf=self.neg_inf + other.neg_inf,
            pos_inf=self.pos_inf + other.pos_inf,
            count=count,
            mean=mean,
            m2=m2,
            min=_pick(min, self.min, other.min),
            max=_pick(max, self.max, other.max),
            values=values,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "numeric",
            "edges": list(self.edges),
            "counts": list(self.counts),
            "missing": self.missing,
            "neg_inf": self.neg_inf,
            "pos_inf": self.pos_inf,
            "count": self.count,
            "mean": self.mean,
            "m2": self.m2,
            "min": self.min,
            "max": self.max,
            "quantiles": dict(self.quantiles),
            "values": None if self.values is None else [[v, n] for v, n in self.values.items()],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> NumericSketch:
        values = data.get("values")
        return cls(
            edges=tuple(float(e) for e in data["edges"]),
            counts=tuple(int(c) for c in data["counts"]),
            missing=int(data["missing"]),
            neg_inf=int(data["neg_inf"]),
            pos_inf=int(data["pos_inf"]),
            count=int(data["count"]),
            mean=float(data["mean"]),
            m2=float(data["m2"]),
            min=None if data["min"] is None else float(data["min"]),
            max=None if data["max"] is None else float(data["max"]),
            quantiles={str(k): float(v) for k, v in data.get("quantiles", {}).items()},
            values=None if values is None else {float(v): int(n) for v, n in values},
        )


def _pick(choose: Any, a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    if b is None:
        return a
    return float(choose(a, b))


def reference_edges(finite: FloatArray, bins: int) -> tuple[float, ...]:
    """Bin edges at `bins` equal-frequency quantiles of the reference, duplicates removed.

    A constant column gets the edges ``(c, c)``: one interval holding exactly ``c``.
    """
    if finite.size == 0:
        return ()
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, bins + 1)))
    if edges.size == 1:
        return (float(edges[0]), float(edges[0]))
    return tuple(float(e) for e in edges)


def bin_counts(finite: FloatArray, edges: tuple[float, ...]) -> tuple[int, ...]:
    """Counts of finite values in [below, intervals..., above] of `edges`.

    Counted as "how many are below each edge" (one vectorised comparison per edge), which
    is several times faster than locating every value with a binary search.
    """
    if not edges:
        return (int(finite.size),)
    below = [int(np.count_nonzero(finite < edge)) for edge in edges]
    # the last interval is closed: the reference maximum belongs inside, not above
    up_to_last = int(np.count_nonzero(finite <= edges[-1]))
    inside = [b - a for a, b in zip(below, [*below[1:-1], up_to_last], strict=False)]
    return (below[0], *inside, int(finite.size) - up_to_last)


def sketch_numeric(
    values: FloatArray, edges: tuple[float, ...] | None = None, *, bins: int = 10
) -> NumericSketch:
    """Sketch a batch of numeric values; `edges` from the reference, or computed (reference)."""
    data = np.asarray(values, dtype=np.float64)
    is_finite = np.isfinite(data)
    clean = bool(is_finite.all())  # the common case: no pass for NaN or infinities
    finite = data if clean else data[is_finite]
    is_reference = edges is None
    if edges is None:
        edges = reference_edges(finite, bins)
    mean = float(finite.mean()) if finite.size else 0.0
    deviation = finite - mean
    m2 = float(np.dot(deviation, deviation))
    del deviation
    quantiles: dict[str, float] = {}
    if is_reference and finite.size:
        levels = np.quantile(finite, QUANTILES)
        quantiles = {
            f"p{round(q * 100):02d}": float(v) for q, v in zip(QUANTILES, levels, strict=True)
        }
    return NumericSketch(
        edges=edges,
        counts=bin_counts(finite, edges),
        missing=0 if clean else int(np.count_nonzero(np.isnan(data))),
        neg_inf=0 if clean else int(np.count_nonzero(data == -np.inf)),
        pos_inf=0 if clean else int(np.count_nonzero(data == np.inf)),
        count=int(finite.size),
        mean=mean,
        m2=m2,
        min=float(finite.min()) if finite.size else None,
        max=float(finite.max()) if finite.size else None,
        quantiles=quantiles,
        values=discrete_counts(finite),
    )


def discrete_counts(finite: FloatArray) -> dict[float, int] | None:
    """Exact counts per value when there are at most :data:`DISCRETE_LIMIT` values."""
    # a cheap look at the head rejects continuous columns without sorting all of them
    if np.unique(finite[:1000]).size > DISCRETE_LIMIT:
        return None
    distinct, counts = np.unique(finite, return_counts=True)
    if distinct.size > DISCRETE_LIMIT:
        return None
    return {float(v): int(n) for v, n in zip(distinct, counts, strict=True)}


@dataclass(frozen=True)
class CategoricalSketch:
    """Frequencies of a categorical column (values as strings), missing values apart.

    At most :data:`CATEGORY_LIMIT` values are counted one by one; further new values are
    counted together in ``unseen``. The reference's own values are never folded away
    when a window is built against it, so they always compare value by value.
    """

    counts: dict[str, int]
    missing: int = 0
    unseen: int = 0

    @property
    def rows(self) -> int:
        return sum(self.counts.values()) + self.missing + self.unseen

    @property
    def present(self) -> int:
        return sum(self.counts.values()) + self.unseen

    def merge(
        self, other: CategoricalSketch, keep: frozenset[str] = frozenset()
    ) -> CategoricalSketch:
        counts = dict(self.counts)
        for value, n in other.counts.items():
            counts[value] = counts.get(value, 0) + n
        counts, folded = _fold(counts, keep)
        return CategoricalSketch(
            counts=counts,
            missing=self.missing + other.missing,
            unseen=self.unseen + other.unseen + folded,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "categorical",
            "counts": dict(self.counts),
            "missing": self.missing,
            "unseen": self.unseen,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CategoricalSketch:
        return cls(
            counts={str(k): int(v) for k, v in data["counts"].items()},
            missing=int(data["missing"]),
            unseen=int(data["unseen"]),
        )


def _fold(counts: dict[str, int], keep: frozenset[str]) -> tuple[dict[str, int], int]:
    """Keep the CATEGORY_LIMIT most frequent values (reference values always); fold the rest."""
    if len(counts) <= CATEGORY_LIMIT:
        return counts, 0
    ranked = sorted(counts.items(), key=lambda item: (item[0] not in keep, -item[1], item[0]))
    kept = dict(ranked[: max(CATEGORY_LIMIT, len(keep & counts.keys()))])
    return kept, sum(n for value, n in ranked[len(kept) :])


def sketch_categorical(
    values: pd.Series[Any], keep: frozenset[str] = frozenset()
) -> CategoricalSketch:
    """Sketch a batch of categorical values; `keep` names the reference's values."""
    frequencies = values.value_counts(dropna=True)
    counts: dict[str, int] = {}
    for value, n in frequencies.items():
        key = str(value)
        counts[key] = counts.get(key, 0) + int(n)
    counts = {k: n for k, n in counts.items() if n > 0}
    missing = int(values.isna().sum())
    counts, folded = _fold(counts, keep)
    return CategoricalSketch(counts=counts, missing=missing, unseen=folded)
