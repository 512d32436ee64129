"""The window summary: what alert rules (CEL, ``monitor.alerts[].when``) see of a window.

Plain JSON values only — numbers, strings, booleans, null, maps and lists — and never NaN
or infinity (a non-finite number becomes null), so a rule's comparison is always defined:

.. code-block:: text

    features:   {name: {score, method, threshold, drifted, p_value, adjusted_p_value,
                        effect_size, psi, ks, wasserstein, chisquare, jensenshannon, z,
                        missing_share, unseen_share, rows}}      (text: "notes.length", ...)
    prediction: the same fields for the prediction, or null
    dataset:    {drift_share, drifted, drifted_features, total_features, judged}
    performance:{roc_auc, precision, recall, review_precision, review_recall, ece, cost,
                 labelled, label_coverage}                       (label-based; null: unknown)
    estimated:  {roc_auc, precision, recall, ..., calibrated}    (CBPE; null: unknown)
    reference:  {roc_auc, ...}                                   (the version's baseline)
    window:     {rows, started_at, ended_at, model_name, model_version, judged}

A statistic a feature did not get (K-S on a categorical feature) is null; PSI, ``score``
and ``effect_size`` are always numbers for a judged window. ``features`` is empty and
``dataset.judged`` false when the window had too few rows to judge.

>>> summary = window_summary(result, {"roc_auc": 0.81})  # doctest: +SKIP
>>> summary["features"]["income"]["psi"]  # doctest: +SKIP
0.27
"""

from __future__ import annotations

import math
from typing import Any

from bastion.monitor.drift import FeatureDrift
from bastion.monitor.results import WindowResult

#: every statistic a feature may carry, null where it was not computed
STATISTICS = ("psi", "ks", "wasserstein", "chisquare", "jensenshannon", "z", "mmd")
#: the flat metric keys of `compute_performance` and `CBPE.estimate`
METRICS = ("roc_auc", "precision", "recall", "review_precision", "review_recall", "ece", "cost")


def window_summary(result: WindowResult, reference_metrics: dict[str, Any]) -> dict[str, Any]:
    """The CEL activation of alert rules for one window (see the module docstring)."""
    drift = result.drift
    features = {} if drift is None else {f.name: feature_summary(f) for f in drift.features}
    prediction = None
    if drift is not None and drift.prediction is not None:
        prediction = feature_summary(drift.prediction)
    performance = None
    if result.performance is not None:
        performance = _numbers(result.performance, (*METRICS, "labelled", "label_coverage"))
    estimated = None
    if result.estimated is not None:
        estimated = _numbers(result.estimated, METRICS)
        estimated["calibrated"] = bool(result.estimated.get("calibrated", False))
    return {
        "features": features,
        "prediction": prediction,
        "dataset": {
            "judged": drift is not None,
            "drift_share": _finite(drift.share) if drift is not None else None,
            "drifted": bool(drift.dataset_drift) if drift is not None else False,
            "drifted_features": drift.drifted_features if drift is not None else 0,
            "total_features": drift.total_features if drift is not None else 0,
        },
        "performance": performance,
        "estimated": estimated,
        "reference": {str(k): _finite(v) for k, v in reference_metrics.items()},
        "window": {
            "rows": result.rows,
            "judged": drift is not None,
            "started_at": result.started_at.isoformat(),
            "ended_at": result.ended_at.isoformat(),
            "model_name": result.model_name,
            "model_version": result.model_version,
        },
    }


def feature_summary(feature: FeatureDrift) -> dict[str, Any]:
    """One feature's drift as plain values: the verdict and every statistic's score."""
    scores: dict[str, float | int | None] = {s.method: _finite(s.score) for s in feature.statistics}
    return {
        "score": _finite(feature.score),
        "method": feature.method,
        "threshold": _finite(feature.threshold),
        "drifted": bool(feature.drifted),
        "p_value": _finite(feature.p_value),
        "adjusted_p_value": _finite(feature.adjusted_p_value),
        "effect_size": _finite(feature.effect_size),
        **{name: scores.get(name) for name in STATISTICS},
        "missing_share": _finite(feature.current_missing_share),
        "unseen_share": _finite(feature.unseen_share),
        "rows": feature.current_rows,
    }


def _numbers(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {key: _finite(data.get(key)) for key in keys}


def _finite(value: Any) -> float | int | None:
    """A number as is, NaN / infinity / anything else as null."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
