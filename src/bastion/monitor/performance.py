"""Label-based performance of one window of decisions: how good were the scores, really?

`compute_performance` takes the scores of the decisions that have a late label and returns
a JSON-ready dict (stored in ``monitor_windows.performance``):

- ``roc_auc`` (scikit-learn's, sample-weighted when weights are given);
- precision and recall at the policy thresholds, with the **decline band as the positive
  decision** (``score ≥ decline_at_or_above``, ``precision``/``recall``) and at the review
  edge (``score ≥ approve_below``: everything not approved, ``review_precision``/``review_recall``);
- calibration: ``ece`` and a ``reliability`` table (`bastion.policy.calibration`'s functions);
- ``cost``: business cost per labelled case when costs are configured, with the semantics of
  `bastion.policy.tuning` (its `ThresholdSearch.evaluate` on the unweighted rows: fn for an
  approved bad case, fp for a declined good one, review for every reviewed case, a reviewer
  assumed right).

Every metric comes as a flat value (``result["roc_auc"]``, handy in alert rules) and in
``result["metrics"][name]`` with a ``ci`` (95 % percentile bootstrap), its ``support`` (the
rows it is computed over) and a ``reason`` when it is undefined (value None). Undefined is a
result, never NaN or an exception: no labels, one class only, nothing in the decline band.

**Bootstrap.** Rows are resampled with replacement ``iterations`` times from a seeded
generator (same data, same seed → same interval). The iterations are bounded so one window
costs at most about `MAX_BOOTSTRAP_WORK` row-evaluations: ``iterations = clamp(MAX_WORK / n,
MIN_ITERATIONS, MAX_ITERATIONS)``; replicates in which a metric is undefined (one class drawn)
are skipped, and with fewer than half of them valid the interval is None. The interval says
how much the figure could move from sampling alone; it does not cover label delay or bias.

**Weights.** Labels from the review queue were sampled (``sampling_probability``); weighting
each by ``1 / p`` corrects AUC, precision, recall and cost for labelling mostly flagged cases.
Calibration is left unweighted on purpose: when review selection depends on the score, the
observed rate within a score bin is unbiased already, and the weights would only reshuffle
the bins' shares in ECE.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from bastion.errors import InvalidInput
from bastion.monitor.config import Costs
from bastion.policy.bands import ScoreBands
from bastion.policy.calibration import (
    check_scores_labels,
    expected_calibration_error,
    reliability_table,
)
from bastion.policy.tuning import Costs as TuningCosts
from bastion.policy.tuning import ThresholdSearch

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: the bootstrap's bounds (see the module docstring)
MIN_ITERATIONS = 50
MAX_ITERATIONS = 200
MAX_BOOTSTRAP_WORK = 2_000_000
CONFIDENCE = 0.95
RELIABILITY_BINS = 10

#: metric names, in the order they are reported
METRICS = (
    "roc_auc",
    "precision",
    "recall",
    "review_precision",
    "review_recall",
    "ece",
    "cost",
)

#: one metric on (scores, labels, weights) → its value, or the reason it is undefined
Metric = Callable[[FloatArray, FloatArray, FloatArray | None], float | str]


def bootstrap_iterations(n: int) -> int:
    """How many bootstrap replicates for `n` rows (bounded work per window)."""
    if n <= 0:
        return 0
    return int(min(MAX_ITERATIONS, max(MIN_ITERATIONS, MAX_BOOTSTRAP_WORK // n)))


def _auc(s: FloatArray, y: FloatArray, w: FloatArray | None) -> float | str:
    from sklearn.metrics import roc_auc_score

    pos = float(y.sum()) if w is None else float((w * y).sum())
    neg = float(y.size - y.sum()) if w is None else float((w * (1 - y)).sum())
    if pos <= 0 or neg <= 0:
        return "needs both classes among the labels"
    return float(roc_auc_score(y, s, sample_weight=w))


def _flagged_rates(threshold: float | None, kind: str) -> Metric:
    """Precision or recall of the decision ``score ≥ threshold`` (weighted counts)."""

    def metric(s: FloatArray, y: FloatArray, w: FloatArray | None) -> float | str:
        if threshold is None:
            return "no policy bands"
        flagged = s >= threshold
        weight = np.ones_like(s) if w is None else w
        true_pos = float((weight * y * flagged).sum())
        if kind == "precision":
            denominator = float((weight * flagged).sum())
            reason = "no case at or above the threshold"
        else:
            denominator = float((weight * y).sum())
            reason = "no positive label"
        return true_pos / denominator if denominator > 0 else reason

    return metric


def _ece(s: FloatArray, y: FloatArray, w: FloatArray | None) -> float | str:
    return expected_calibration_error(s, y, RELIABILITY_BINS)


def _cost(bands: ScoreBands | None, costs: Costs | None) -> Metric:
    """Cost per case; unweighted through `ThresholdSearch`, weighted with its formula."""

    def metric(s: FloatArray, y: FloatArray, w: FloatArray | None) -> float | str:
        if costs is None:
            return "no costs configured (monitor.costs)"
        if bands is None:
            return "no policy bands"
        low, high = bands.approve_below, bands.decline_at_or_above
        if w is None:
            search = ThresholdSearch(s, y, TuningCosts(costs.fp, costs.fn, costs.review))
            return search.evaluate(low, high).cost_per_case
        approved, declined = s < low, s >= high
        reviewed = ~approved & ~declined
        total = (
            costs.fn * (w * y * approved).sum()
            + costs.fp * (w * (1 - y) * declined).sum()
            + costs.review * (w * reviewed).sum()
        )
        return float(total / w.sum())

    return metric


def _check_weights(weights: Any, n: int) -> FloatArray | None:
    if weights is None:
        return None
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if w.size != n:
        raise InvalidInput(f"weights must have one value per label, got {w.size} for {n}")
    if not np.all(np.isfinite(w)) or (w <= 0).any():
        raise InvalidInput("weights must be finite and > 0 (1 / sampling_probability)")
    return w


def _undefined(reason: str, support: int = 0) -> dict[str, Any]:
    return {"value": None, "ci": None, "support": support, "reason": reason}


def _percentile_interval(values: list[float], planned: int) -> list[float] | None:
    if planned == 0 or len(values) < max(1, planned // 2):
        return None
    alpha = (1.0 - CONFIDENCE) / 2.0
    lo, hi = np.quantile(np.asarray(values), [alpha, 1.0 - alpha])
    return [float(lo), float(hi)]


def _support(name: str, s: FloatArray, y: FloatArray, bands: ScoreBands | None) -> int:
    """Rows a metric is computed over: the flagged ones for precision, the positives for
    recall, all labelled rows otherwise."""
    if name.endswith("recall"):
        return int(y.sum())
    if bands is not None and name == "precision":
        return int((s >= bands.decline_at_or_above).sum())
    if bands is not None and name == "review_precision":
        return int((s >= bands.approve_below).sum())
    return int(s.size)


def compute_performance(
    scores: Any,
    labels: Any,
    *,
    bands: ScoreBands | None,
    costs: Costs | None,
    weights: Any = None,
    seed: int = 0,
    iterations: int | None = None,
) -> dict[str, Any]:
    """Label-based performance of labelled scores, each metric with a bootstrap interval.

    Parameters
    ----------
    scores : array-like of shape (n,)
        The score the policy bands were applied to, P(adverse) in [0, 1].
    labels : array-like of shape (n,)
        The late labels, 1 for the adverse case; n may be 0 (every metric then None).
    bands : ScoreBands, optional
        The policy's thresholds; without them precision, recall and cost are None.
    costs : Costs, optional
        ``monitor.costs``; without them ``cost`` is None.
    weights : array-like of shape (n,), optional
        Sampling weights, ``1 / sampling_probability`` for review-sourced labels, 1 otherwise.
    seed : int
        The bootstrap's seed.
    iterations : int, optional
        Bootstrap replicates; by default `bootstrap_iterations` (bounded work); 0 skips the
        intervals.

    The caller adds the label coverage (labelled / decisions in the window).

    >>> result = compute_performance([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1],
    ...                              bands=ScoreBands(approve_below=0.3, decline_at_or_above=0.7),
    ...                              costs=None)
    >>> result["roc_auc"], result["precision"], result["cost"]
    (1.0, 1.0, None)
    """
    n_raw = int(np.asarray(scores).size)
    if n_raw == 0 and int(np.asarray(labels).size) == 0:
        return _empty(bands, costs)
    s, y8 = check_scores_labels(scores, labels)
    y = y8.astype(np.float64)
    w = _check_weights(weights, s.size)
    decline = None if bands is None else bands.decline_at_or_above
    review = None if bands is None else bands.approve_below
    metrics: dict[str, Metric] = {
        "roc_auc": _auc,
        "precision": _flagged_rates(decline, "precision"),
        "recall": _flagged_rates(decline, "recall"),
        "review_precision": _flagged_rates(review, "precision"),
        "review_recall": _flagged_rates(review, "recall"),
        "ece": _ece,
        "cost": _cost(bands, costs),
    }
    points = {name: metric(s, y, w) for name, metric in metrics.items()}
    if iterations is None:
        iterations = bootstrap_iterations(s.size)
    elif iterations < 0:
        raise InvalidInput(f"iterations must be ≥ 0, got {iterations}")
    samples: dict[str, list[float]] = {name: [] for name in metrics}
    rng = np.random.default_rng(seed)
    defined = [name for name, point in points.items() if not isinstance(point, str)]
    for _ in range(iterations if defined else 0):
        index = rng.integers(0, s.size, s.size)
        bs, by, bw = s[index], y[index], None if w is None else w[index]
        for name in defined:
            value = metrics[name](bs, by, bw)
            if not isinstance(value, str):
                samples[name].append(value)
    details: dict[str, dict[str, Any]] = {}
    for name, point in points.items():
        support = _support(name, s, y, bands)
        if isinstance(point, str):
            details[name] = _undefined(point, support)
        else:
            interval = _percentile_interval(samples[name], iterations)
            details[name] = {
                "value": point,
                "ci": interval,
                "support": support,
                "reason": None
                if interval
                else "no bootstrap"
                if iterations == 0
                else "too few resamples had the metric defined",
            }
    positives = float(y.sum())
    return {
        "estimate": False,
        **{name: details[name]["value"] for name in METRICS},
        "labelled": int(s.size),
        "positives": int(positives),
        "negatives": int(s.size - positives),
        "weighted": w is not None,
        "thresholds": _thresholds(bands),
        "costs": None if costs is None else costs.model_dump(),
        "metrics": details,
        "reliability": [b.to_dict() for b in reliability_table(s, y, RELIABILITY_BINS)],
        "bootstrap": {"iterations": iterations, "seed": seed, "confidence": CONFIDENCE},
    }


def _thresholds(bands: ScoreBands | None) -> dict[str, float] | None:
    if bands is None:
        return None
    return {"review": bands.approve_below, "decline": bands.decline_at_or_above}


def _empty(bands: ScoreBands | None, costs: Costs | None) -> dict[str, Any]:
    """The defined answer for a window without labels."""
    return {
        "estimate": False,
        **dict.fromkeys(METRICS),
        "labelled": 0,
        "positives": 0,
        "negatives": 0,
        "weighted": False,
        "thresholds": _thresholds(bands),
        "costs": None if costs is None else costs.model_dump(),
        "metrics": {name: _undefined("no labelled decisions") for name in METRICS},
        "reliability": [],
        "bootstrap": {"iterations": 0, "seed": 0, "confidence": CONFIDENCE},
    }
