"""A monitoring report a stakeholder can read: what drifted, how the model does, over time.

:func:`build_report` turns one window (its profile and drift report, from
``WindowService.compute``), the reference profile and the stored windows before it into a
:class:`MonitorReport`: a plain-words verdict, the drift table sorted by severity, the
reference-vs-window distribution of every drifted feature and of the prediction (from the
profiles' bins, so no raw rows are needed), and performance and label coverage per stored
window. ``to_dict()`` is the JSON for machines; :func:`render_html` (in
:mod:`bastion.monitor.report_html`) draws the same content as one self-contained page.

Anything may be missing — no drift (too few rows), no prediction, no labels, one window —
and the report still reads: each section says what it lacks instead of failing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, Literal

from bastion.monitor.drift import DriftReport, FeatureDrift
from bastion.monitor.methods import P_VALUE_METHODS
from bastion.monitor.profile import Profile, TextSketch
from bastion.monitor.report_bins import Distribution, distribution
from bastion.monitor.results import WindowResult

#: an en dash, for ranges of numbers
DASH = "\u2013"
Status = Literal["stable", "watch", "drift", "not judged"]
#: performance metrics drawn over time (label-based and estimated), in this order
TIMELINE_METRICS = ("roc_auc", "precision", "recall")
METRIC_NAMES = {"roc_auc": "AUC", "precision": "precision", "recall": "recall"}


@dataclass(frozen=True)
class Metric:
    """One performance figure with its 95 % interval (None when not computed)."""

    value: float
    low: float | None = None
    high: float | None = None


@dataclass(frozen=True)
class Point:
    """One window on the timeline: its drift counts, performance, estimate and coverage."""

    started_at: str
    ended_at: str
    rows: int
    model_version: int
    drifted_features: int | None
    total_features: int | None
    metrics: dict[str, Metric] = field(default_factory=dict)
    estimated: dict[str, Metric] = field(default_factory=dict)
    labelled: int = 0
    label_coverage: float | None = None


@dataclass(frozen=True)
class MonitorReport:
    """Everything the page shows, as plain data (``to_dict`` / ``from_dict`` round-trip)."""

    deployment: str
    model_name: str
    model_version: int
    started_at: str
    ended_at: str
    rows: int
    generated_at: str
    status: Status
    verdict: list[str]
    features: list[dict[str, Any]]
    prediction: dict[str, Any] | None
    drifted_features: int
    total_features: int
    dataset_drift: bool
    distributions: list[Distribution]
    prediction_distribution: Distribution | None
    timeline: list[Point]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MonitorReport:
        def point(p: dict[str, Any]) -> Point:
            metrics = {k: Metric(**v) for k, v in p["metrics"].items()}
            estimated = {k: Metric(**v) for k, v in p["estimated"].items()}
            return Point(**(p | {"metrics": metrics, "estimated": estimated}))

        prediction = data["prediction_distribution"]
        return cls(
            **data
            | {
                "distributions": [Distribution.from_dict(d) for d in data["distributions"]],
                "prediction_distribution": None
                if prediction is None
                else Distribution.from_dict(prediction),
                "timeline": [point(p) for p in data["timeline"]],
            }
        )


def severity(feature: dict[str, Any]) -> tuple[bool, float, str]:
    """Sort key: drifted first, then the largest effect size, then by name."""
    return (not feature["drifted"], -float(feature["effect_size"]), feature["name"])


def build_report(
    deployment: str,
    window: WindowResult,
    reference: Profile,
    history: Sequence[WindowResult] = (),
    *,
    generated_at: datetime,
) -> MonitorReport:
    """The report of `window` against `reference`, with `history` (any order) as its timeline.

    `history` are the stored windows before this one; `window` joins the timeline too
    unless a stored window with the same bounds is already there.
    """
    drift = window.drift
    features: list[dict[str, Any]] = []
    if drift is not None:
        features = [_row(f) for f in drift.features]
        features.sort(key=severity)
    prediction = None if drift is None or drift.prediction is None else _row(drift.prediction)
    distributions = [
        _distribution(row, reference, window.profile)
        for row in features
        # sentence-embedding rows compare vectors: there is no histogram to draw
        if row["drifted"] and row["descriptor"] != "embedding"
    ]
    prediction_distribution = None
    if reference.prediction is not None and window.profile.prediction is not None:
        prediction_distribution = distribution(
            reference.prediction_name or "prediction",
            reference.prediction,
            window.profile.prediction,
        )
    bounds = {(w.started_at, w.ended_at) for w in history}
    windows = list(history)
    if (window.started_at, window.ended_at) not in bounds:
        windows.append(window)
    timeline = [_point(w) for w in sorted(windows, key=lambda w: w.ended_at)]
    current = _point(window)
    return MonitorReport(
        deployment=deployment,
        model_name=window.model_name,
        model_version=window.model_version,
        started_at=window.started_at.isoformat(),
        ended_at=window.ended_at.isoformat(),
        rows=window.rows,
        generated_at=generated_at.isoformat(),
        status=_status(drift),
        verdict=_verdict(drift, prediction, current, window.rows),
        features=features,
        prediction=prediction,
        drifted_features=0 if drift is None else drift.drifted_features,
        total_features=len(reference.features) if drift is None else drift.total_features,
        dataset_drift=False if drift is None else drift.dataset_drift,
        distributions=distributions,
        prediction_distribution=prediction_distribution,
        timeline=timeline,
    )


def _row(result: FeatureDrift) -> dict[str, Any]:
    """A drift table row: FeatureDrift's fields, its display name, whether it is a test."""
    return result.to_dict() | {"name": result.name, "test": result.method in P_VALUE_METHODS}


def _distribution(row: dict[str, Any], reference: Profile, current: Profile) -> Distribution:
    name, descriptor = row["feature"], row["descriptor"]
    ref, cur = reference.features[name], current.features[name]
    if isinstance(ref, TextSketch) and isinstance(cur, TextSketch):
        if descriptor == "script":
            return distribution(row["name"], ref.script, cur.script)
        return distribution(row["name"], ref.descriptors[descriptor], cur.descriptors[descriptor])
    if isinstance(ref, TextSketch) or isinstance(cur, TextSketch):
        raise ValueError(f"feature {name!r} is text on one side only")
    return distribution(row["name"], ref, cur)


def _metric(data: dict[str, Any] | None, name: str) -> Metric | None:
    """A metric from a performance or estimate dict: ``metrics[name]`` with ``ci``, or flat."""
    if not data:
        return None
    detail = (data.get("metrics") or {}).get(name)
    if isinstance(detail, dict):
        value, ci = detail.get("value"), detail.get("ci")
    else:
        value, ci = data.get(name), None
    if not isinstance(value, int | float) or isinstance(value, bool):
        return None
    if isinstance(ci, list | tuple) and len(ci) == 2 and None not in ci:
        return Metric(float(value), float(ci[0]), float(ci[1]))
    return Metric(float(value))


def _point(window: WindowResult) -> Point:
    performance, estimated = window.performance, window.estimated
    metrics = {n: m for n in TIMELINE_METRICS if (m := _metric(performance, n)) is not None}
    estimates = {n: m for n in TIMELINE_METRICS if (m := _metric(estimated, n)) is not None}
    # labelled_decisions counts every labelled decision; labelled, those the metrics used
    facts = performance or {}
    labelled = int(facts.get("labelled_decisions") or facts.get("labelled") or 0)
    coverage = facts.get("label_coverage")
    if not isinstance(coverage, int | float):
        coverage = labelled / window.rows if window.rows else None
    drift = window.drift
    return Point(
        started_at=window.started_at.isoformat(),
        ended_at=window.ended_at.isoformat(),
        rows=window.rows,
        model_version=window.model_version,
        drifted_features=None if drift is None else drift.drifted_features,
        total_features=None if drift is None else drift.total_features,
        metrics=metrics,
        estimated=estimates,
        labelled=labelled,
        label_coverage=None if coverage is None else float(coverage),
    )


def _status(drift: DriftReport | None) -> Status:
    if drift is None:
        return "not judged"
    if drift.dataset_drift or (drift.prediction is not None and drift.prediction.drifted):
        return "drift"
    return "watch" if drift.drifted_features else "stable"


def _names(names: list[str], limit: int = 5) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _verdict(
    drift: DriftReport | None,
    prediction: dict[str, Any] | None,
    current: Point,
    rows: int,
) -> list[str]:
    """The summary in plain words, one sentence per concern."""
    lines: list[str] = []
    if drift is None:
        lines.append(
            f"Drift not judged: the window has {rows:,} decisions, "
            "fewer than the monitor's minimum."
        )
    else:
        drifted = sorted({f.feature for f in drift.features if f.drifted})
        if drifted:
            lines.append(
                f"{len(drifted)} of {drift.total_features} features drifted: {_names(drifted)}."
            )
        else:
            lines.append(f"No feature drifted ({drift.total_features} compared).")
        share = f"{drift.share:.0%} of features drifted; the data set counts as drifted at "
        lines.append(
            ("Data set drift: " if drift.dataset_drift else "No data set drift: ")
            + share
            + f"{drift.drift_share:.0%}."
        )
    if prediction is None:
        lines.append("No prediction distribution to compare.")
    elif prediction["drifted"]:
        lines.append(
            f"Prediction distribution shifted ({prediction['method']} "
            f"{prediction['score']:.3g}, threshold {prediction['threshold']:.3g})."
        )
    else:
        lines.append("Prediction distribution stable.")
    lines.append(_performance_sentence(current))
    return lines


def _performance_sentence(point: Point) -> str:
    auc, estimate = point.metrics.get("roc_auc"), point.estimated.get("roc_auc")
    coverage = f"{point.label_coverage:.0%}" if point.label_coverage is not None else "some"
    if auc is not None:
        interval = f" ({auc.low:.2f}{DASH}{auc.high:.2f})" if auc.low is not None else ""
        return f"AUC {auc.value:.2f}{interval} on {coverage} labelled ({point.labelled:,} labels)."
    text = (
        "No labels yet" if not point.labelled else f"{point.labelled:,} labels, too few for an AUC"
    )
    if estimate is not None:
        interval = (
            f" ({estimate.low:.2f}{DASH}{estimate.high:.2f})" if estimate.low is not None else ""
        )
        return f"{text}; estimated AUC {estimate.value:.2f}{interval} (label-free estimate, CBPE)."
    return f"{text}, and no label-free estimate: performance unknown."
