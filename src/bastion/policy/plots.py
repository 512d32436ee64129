"""The cost-curve picture and a one-file HTML report of a tuning run.

The PNG has two panels over ``t_high``: the expected cost per case with the best ``t_low``
for each (within the review capacity, and without it, dashed), and the review load each
of those needs, against the capacity line. Where the two cost curves
part is where the capacity binds. The HTML page inlines the PNG (base64) with the cost
table and the calibration tables, so it can be mailed or attached to a change request:
no external assets.

matplotlib is imported inside `render_png`, so importing this module stays cheap.
"""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

import numpy as np
from jinja2 import Environment, select_autoescape

from bastion.policy.calibration import CalibrationReport
from bastion.policy.tuning import CostCurve, TuningResult

#: the most points drawn per curve; more add nothing visible
MAX_POINTS = 2000


def _thin(curve: CostCurve) -> CostCurve:
    """At most `MAX_POINTS` evenly spaced candidates, ends included."""
    k = curve.t_high.size
    if k <= MAX_POINTS:
        return curve
    keep = np.unique(np.linspace(0, k - 1, MAX_POINTS).round().astype(np.int64))
    return CostCurve(
        curve.t_high[keep], curve.t_low[keep], curve.cost_per_case[keep], curve.review_share[keep]
    )


def render_png(result: TuningResult, *, title: str = "Expected cost by threshold") -> bytes:
    """The two-panel cost-curve figure as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    constrained = _thin(result.curve)
    free = _thin(result.unconstrained_curve)
    chosen = result.chosen
    figure = Figure(figsize=(8, 6.5), dpi=110, layout="constrained")
    cost_ax, load_ax = figure.subplots(2, 1, sharex=True, height_ratios=(3, 2))
    cost_ax.plot(free.t_high, free.cost_per_case, "--", color="0.55", label="unlimited review")
    cost_ax.plot(
        constrained.t_high, constrained.cost_per_case, color="tab:blue", label="within capacity"
    )
    cost_ax.plot(
        [chosen.t_high],
        [chosen.cost_per_case],
        "o",
        color="tab:red",
        label=f"chosen: review {chosen.t_low:.3f} ≤ s < {chosen.t_high:.3f}",
    )
    cost_ax.set_ylabel("expected cost per case")
    cost_ax.set_title(title)
    cost_ax.legend(loc="best", fontsize="small")
    cost_ax.grid(alpha=0.3)

    per_day = result.daily_volume is not None
    scale = result.daily_volume if result.daily_volume is not None else 1.0
    load_ax.plot(
        free.t_high, free.review_share * scale, "--", color="0.55", label="unlimited review"
    )
    load_ax.plot(
        constrained.t_high,
        constrained.review_share * scale,
        color="tab:blue",
        label="within capacity",
    )
    if result.review_capacity is not None:
        load_ax.axhline(result.review_capacity, color="tab:orange", label="review capacity")
    load_ax.plot(
        [chosen.t_high], [chosen.review_share * scale], "o", color="tab:red", label="chosen"
    )
    load_ax.set_xlabel("t_high (decline at or above), with the best t_low for each")
    load_ax.set_ylabel("reviews per day" if per_day else "share reviewed")
    load_ax.legend(loc="best", fontsize="small")
    load_ax.grid(alpha=0.3)

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Threshold tuning: {{ deployment }}</title>
<style>
body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}
table{border-collapse:collapse;margin:1rem 0}th,td{padding:.25rem .6rem;border-bottom:1px solid #ddd;
white-space:nowrap;
text-align:right}th:first-child,td:first-child{text-align:left}tr.chosen{background:#fdecea;font-weight:600}
tr.over td{color:#999}img{max-width:100%}code{background:#f4f4f4;padding:0 .2rem}
</style></head><body>
<h1>Threshold tuning: {{ deployment }}</h1>
<p>{{ "{:,}".format(cases) }} labelled cases, {{ "{:,}".format(positives) }} adverse ({{ "%.1f"|format(prevalence * 100) }} %).
Costs: declining a good case {{ fmt(costs.fp) }}, approving a bad case {{ fmt(costs.fn) }},
a review {{ fmt(costs.review) }}.
{% if capacity is not none %}Review capacity {{ fmt(capacity) }} per day at {{ fmt(volume) }} cases per day.{% endif %}</p>
<p><strong>Chosen:</strong> approve <code>s &lt; {{ fmt(chosen.t_low) }}</code>, review in between,
decline <code>s ≥ {{ fmt(chosen.t_high) }}</code>: expected cost {{ fmt(chosen.cost_per_case) }} per case
{% if chosen.cost_per_day is not none %}({{ "%.2f"|format(chosen.cost_per_day) }} per day){% endif %}.</p>
<img alt="Expected cost per case and review load by threshold" src="data:image/png;base64,{{ png }}">
<h2>Cost table</h2>
<table><tr><th>option</th><th>t_low</th><th>t_high</th><th>cost/case</th><th>cost/day</th>
<th>reviewed</th><th>reviews/day</th><th>FP rate</th><th>FN rate</th><th>fits capacity</th></tr>
{% for row in rows %}<tr class="{{ 'chosen' if row.label == 'chosen' else ('' if row.within_capacity else 'over') }}">
<td>{{ row.label }}</td><td>{{ fixed(row.t_low) }}</td><td>{{ fixed(row.t_high) }}</td>
<td>{{ fixed(row.cost_per_case) }}</td><td>{{ fmt(row.cost_per_day) }}</td>
<td>{{ "%.1f"|format(row.review_share * 100) }} %</td><td>{{ fmt(row.reviews_per_day) }}</td>
<td>{{ pct(row.fp_rate) }}</td><td>{{ pct(row.fn_rate) }}</td><td>{{ "yes" if row.within_capacity else "no" }}</td></tr>
{% endfor %}</table>
{% if calibration %}
<h2>Calibration ({{ calibration.method }})</h2>
<p>Expected calibration error {{ fmt(calibration.ece_before) }} before,
{{ fmt(calibration.ece_after) }} after ({{ calibration.folds }}-fold cross-validated).</p>
{% for name, table in (("before", calibration.table_before), ("after", calibration.table_after)) %}
<h3>Reliability {{ name }}</h3>
<table><tr><th>bin</th><th>count</th><th>mean score</th><th>observed rate</th></tr>
{% for b in table %}<tr><td>{{ "%.1f"|format(b.lower) }} to {{ "%.1f"|format(b.upper) }}</td><td>{{ b.count }}</td>
<td>{{ "%.3f"|format(b.mean_predicted) }}</td><td>{{ "%.3f"|format(b.observed_rate) }}</td></tr>
{% endfor %}</table>
{% endfor %}
{% endif %}
</body></html>
"""


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:,.6g}"


def _fixed(value: float) -> str:
    return f"{value:.4f}"


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f} %"


def render_html(
    result: TuningResult,
    png: bytes,
    *,
    deployment: str,
    calibration: CalibrationReport | None = None,
) -> str:
    """A self-contained page: the figure, the inputs, the cost table, calibration tables."""
    environment = Environment(autoescape=select_autoescape(default=True, default_for_string=True))
    template = environment.from_string(_PAGE)
    context: dict[str, Any] = {
        "deployment": deployment,
        "cases": result.cases,
        "positives": result.positives,
        "prevalence": result.positives / result.cases,
        "costs": result.costs,
        "capacity": result.review_capacity,
        "volume": result.daily_volume,
        "chosen": result.chosen,
        "rows": [a.to_dict() for a in result.alternatives],
        "calibration": calibration,
        "png": base64.b64encode(png).decode("ascii"),
        "fmt": _fmt,
        "fixed": _fixed,
        "pct": _pct,
    }
    return template.render(context)


def write_report(
    result: TuningResult,
    directory: Path,
    *,
    deployment: str,
    calibration: CalibrationReport | None = None,
) -> tuple[Path, Path]:
    """Write ``cost-curve.png`` and ``tuning.html`` into `directory` (created if needed)."""
    directory.mkdir(parents=True, exist_ok=True)
    png = render_png(result, title=f"Expected cost by threshold: {deployment}")
    png_path = directory / "cost-curve.png"
    html_path = directory / "tuning.html"
    png_path.write_bytes(png)
    html_path.write_text(
        render_html(result, png, deployment=deployment, calibration=calibration), encoding="utf-8"
    )
    return png_path, html_path
