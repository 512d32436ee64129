"""The monitoring report's pictures, as inline SVG: distributions and performance over time.

Each function draws one small matplotlib figure and returns it as an ``<svg>`` element
ready to paste into the page: text stays text (``svg.fonttype: none``, so it is crisp,
searchable and takes the page's font), and the XML header, comments and metadata block
(which links to purl.org and matplotlib.org) are stripped, so the page references no
external host. Labels come from feature and category names, so ``$`` is escaped (it would
start matplotlib's mathtext); matplotlib escapes ``<`` and ``&`` itself.

matplotlib is imported inside `_figure`, so importing this module stays cheap.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

REFERENCE_COLOUR = "#94a3b8"
CURRENT_COLOUR = "#2563eb"
DRIFT_COLOUR = "#dc2626"
#: measured series and label-free estimates (dashed) each take the next colour of their own
MEASURED_COLOURS = (CURRENT_COLOUR, "#0f766e", "#7c3aed", "#4b5563")
ESTIMATE_COLOURS = ("#d97706", "#db2777", "#65a30d", "#92400e")
#: figure width in inches: at 96 dpi about the page's column, so text is drawn near 1:1
WIDTH = 10.0

_RC: dict[Any, Any] = {
    "svg.fonttype": "none",
    "svg.hashsalt": "bastion-report",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#cbd5e1",
    "axes.labelcolor": "#334155",
    "xtick.color": "#475569",
    "ytick.color": "#475569",
    "axes.grid": True,
    "axes.grid.axis": "y",
    "grid.color": "#e2e8f0",
    "grid.linewidth": 0.8,
    "legend.frameon": False,
}
_STRIP = re.compile(r"<\?xml.*?\?>|<!DOCTYPE.*?>|<!--.*?-->|<metadata>.*?</metadata>", re.DOTALL)


def _days(moment: datetime) -> float:
    """matplotlib's date number: days since its default epoch, 1970-01-01 UTC."""
    return moment.timestamp() / 86_400.0


def _figure(width: float, height: float) -> Figure:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=96, layout="constrained")


def _svg(figure: Figure, salt: str) -> str:
    import matplotlib

    buffer = io.StringIO()
    # a salt per picture keeps clip-path ids apart when many SVGs share one page
    with matplotlib.rc_context(_RC | {"svg.hashsalt": salt}):
        figure.savefig(buffer, format="svg")
    return _STRIP.sub("", buffer.getvalue()).strip()


def plain(text: str) -> str:
    """A label matplotlib draws literally (no mathtext)."""
    return text.replace("$", r"\$")


def distribution_svg(
    labels: Sequence[str],
    reference: Sequence[float],
    current: Sequence[float],
    *,
    flagged: Sequence[bool],
    salt: str,
) -> str:
    """Grouped bars of the reference's and the window's shares per bin or category.

    Parameters
    ----------
    labels : one per bar (a bin's range, a category, "missing", …), shape (k,)
    reference, current : shares of each side in each bar, shape (k,)
    flagged : bars to emphasise (values the reference never had: new categories,
        outside its range), drawn in the drift colour, shape (k,)
    salt : unique per picture on the page
    """
    import matplotlib
    import numpy as np

    with matplotlib.rc_context(_RC):
        figure = _figure(WIDTH, 3.0)
        axes: Axes = figure.subplots()
        x = np.arange(len(labels))
        width = 0.4
        axes.bar(x - width / 2, reference, width, color=REFERENCE_COLOUR, label="reference")
        colours = [DRIFT_COLOUR if f else CURRENT_COLOUR for f in flagged]
        axes.bar(x + width / 2, current, width, color=colours, label="this window")
        for i, (share, flag) in enumerate(zip(current, flagged, strict=True)):
            if flag and share > 0:  # small shares of never-seen values would be invisible
                axes.annotate(
                    f"{share:.1%}",
                    (i + width / 2, share),
                    xytext=(0, 2),
                    textcoords="offset points",
                    ha="center",
                    color=DRIFT_COLOUR,
                    fontsize=8,
                )
        axes.set_xticks(x, [plain(label) for label in labels])
        rotate = len(labels) > 6 or max((len(label) for label in labels), default=0) > 10
        if rotate:
            axes.tick_params(axis="x", labelrotation=35)
            for tick in axes.get_xticklabels():
                tick.set_horizontalalignment("right")
        axes.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
        axes.set_ylabel("share of rows")
        figure.legend(loc="outside upper right", ncols=2)
        axes.set_axisbelow(True)
        return _svg(figure, salt)


def timeline_svg(
    ends: Sequence[datetime],
    series: dict[str, Sequence[tuple[float, float | None, float | None] | None]],
    *,
    estimated: frozenset[str] = frozenset(),
    ylabel: str,
    percent: bool = False,
    salt: str,
) -> str:
    """Lines over window end times, one per series, each with its confidence band.

    Parameters
    ----------
    ends : window end times, oldest first, shape (n,)
    series : name → per window ``(value, low, high)`` or None where there is no value
    estimated : series drawn dashed in the estimate colours (label-free estimates)
    ylabel : the y axis's label
    percent : format the y axis as percentages
    salt : unique per picture on the page
    """
    import matplotlib
    import matplotlib.dates as mdates

    measured_colours, estimate_colours = iter(MEASURED_COLOURS), iter(ESTIMATE_COLOURS)
    with matplotlib.rc_context(_RC):
        figure = _figure(WIDTH, 2.8)
        axes: Axes = figure.subplots()
        for name, points in series.items():
            kept = [(t, p) for t, p in zip(ends, points, strict=True) if p is not None]
            if not kept:
                continue
            times = [_days(t) for t, _ in kept]
            values = [p[0] for _, p in kept]
            colour = next(estimate_colours if name in estimated else measured_colours, "#4b5563")
            style: dict[str, Any] = {"linestyle": "--"} if name in estimated else {}
            axes.plot(times, values, marker="o", markersize=3.5, color=colour, label=name, **style)
            bands = [
                (_days(t), p[1], p[2]) for t, p in kept if p[1] is not None and p[2] is not None
            ]
            if bands:
                axes.fill_between(
                    [b[0] for b in bands],
                    [float(b[1] or 0.0) for b in bands],
                    [float(b[2] or 0.0) for b in bands],
                    color=colour,
                    alpha=0.15,
                    linewidth=0,
                )
        locator = mdates.AutoDateLocator(minticks=3)  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_locator(locator)
        formatter = mdates.ConciseDateFormatter(locator)  # type: ignore[no-untyped-call]
        axes.xaxis.set_major_formatter(formatter)
        if percent:
            axes.yaxis.set_major_formatter(matplotlib.ticker.PercentFormatter(1.0, decimals=0))
            axes.set_ylim(bottom=0)
        axes.set_ylabel(ylabel)
        if axes.get_legend_handles_labels()[0]:
            figure.legend(loc="outside upper right", ncols=4)
        axes.set_axisbelow(True)
        return _svg(figure, salt)
