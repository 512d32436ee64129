"""The monitoring report as one self-contained HTML page.

The page has no external assets — CSS inline, pictures as inline SVG — so it can be mailed,
attached to a ticket or opened offline. Every name that came from data (features,
categories, the deployment) is escaped: Jinja's autoescape for the page, matplotlib's XML
writer inside the pictures.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup

from bastion.monitor.report import DASH, METRIC_NAMES, MonitorReport, Point
from bastion.monitor.report_bins import Distribution
from bastion.monitor.report_plots import distribution_svg, timeline_svg

#: called after each picture is drawn, with what was drawn (for progress bars)
Progress = Callable[[str], None]


def _p_value(value: float | None) -> str:
    if value is None:
        return DASH
    return f"{value:.1e}" if value < 1e-3 else f"{value:.3f}"


def _share(value: float | None) -> str:
    return DASH if value is None else f"{value:.1%}"


def _when(text: str) -> str:
    """An ISO timestamp as 'YYYY-MM-DD HH:MM UTC' (timestamps are UTC)."""
    return datetime.fromisoformat(text).strftime("%Y-%m-%d %H:%M UTC")


def _environment() -> Environment:
    environment = Environment(
        loader=PackageLoader("bastion.monitor", "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters.update(
        p_value=_p_value,
        share=_share,
        when=_when,
        number=lambda v: f"{v:.3g}",
    )
    return environment


def picture_count(report: MonitorReport) -> int:
    """How many pictures :func:`render_html` draws (the progress bar's total)."""
    timeline = 3 if report.timeline else 0
    return len(report.distributions) + (report.prediction_distribution is not None) + timeline


def _bars(item: Distribution, salt: str) -> Markup:
    svg = distribution_svg(
        item.labels, item.reference, item.current, flagged=item.flagged, salt=salt
    )
    return Markup(svg)  # noqa: S704 - matplotlib's SVG writer escapes every label


def _series(points: list[Point], names: tuple[str, ...], estimated: bool) -> dict[str, Any]:
    """Per metric, its (value, low, high) per window, for the metrics that have any."""
    series: dict[str, list[Any]] = {}
    for name in names:
        values = []
        for point in points:
            metric = (point.estimated if estimated else point.metrics).get(name)
            values.append(None if metric is None else (metric.value, metric.low, metric.high))
        if any(v is not None for v in values):
            label = METRIC_NAMES[name]
            series[f"estimated {label}" if estimated else label] = values
    return series


def _lines(
    points: list[Point], names: tuple[str, ...], ylabel: str, salt: str, **options: Any
) -> Markup | None:
    """One timeline picture of `names`, measured and estimated; None when neither exists."""
    ends = [datetime.fromisoformat(p.ended_at) for p in points]
    measured, estimated = _series(points, names, False), _series(points, names, True)
    if not measured and not estimated:
        return None
    svg = timeline_svg(
        ends,
        measured | estimated,
        estimated=frozenset(estimated),
        ylabel=ylabel,
        salt=salt,
        **options,
    )
    return Markup(svg)  # noqa: S704 - series names are fixed strings


def _timeline(report: MonitorReport, done: Progress) -> dict[str, Markup | None]:
    points = report.timeline
    auc = _lines(points, ("roc_auc",), "ROC AUC", "auc")
    done("AUC over time")
    rates = _lines(points, ("precision", "recall"), "share", "rates")
    done("precision and recall over time")
    coverage = None
    if any(p.labelled for p in points):
        shares = [
            None if p.label_coverage is None else (p.label_coverage, None, None) for p in points
        ]
        coverage = Markup(  # noqa: S704 - fixed labels only
            timeline_svg(
                [datetime.fromisoformat(p.ended_at) for p in points],
                {"labelled share": shares},
                ylabel="labelled",
                percent=True,
                salt="coverage",
            )
        )
    done("label coverage")
    return {"auc": auc, "rates": rates, "coverage": coverage}


def render_html(report: MonitorReport, progress: Progress | None = None) -> str:
    """The report as one HTML document (str); `progress` is told after each picture."""
    done = progress or (lambda _: None)
    pictures = []
    for i, item in enumerate(report.distributions):
        pictures.append(_bars(item, f"feature-{i}"))
        done(item.name)
    prediction = None
    if report.prediction_distribution is not None:
        prediction = _bars(report.prediction_distribution, "prediction")
        done("prediction")
    timeline = _timeline(report, done) if report.timeline else {}
    template = _environment().get_template("report.html")
    return template.render(
        report=report,
        distributions=list(zip(report.distributions, pictures, strict=True)),
        features={f["name"]: f for f in report.features},
        prediction_picture=prediction,
        auc_picture=timeline.get("auc"),
        rates_picture=timeline.get("rates"),
        coverage_picture=timeline.get("coverage"),
        metric_names=METRIC_NAMES,
    )
