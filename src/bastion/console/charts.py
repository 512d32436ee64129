"""The contribution bar chart of a task page, computed on the server (no JavaScript).

Each bar is one of the caller's fields: how far it pushed this decision's score up (toward
the adverse outcome) or down, in the space the explanation adds up in (log-odds for most
classifiers). Bars are sorted by magnitude and scaled to the largest, so the page draws them
as plain SVG rectangles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

#: most bars a page shows; the rest are summed into one "other fields" bar
MAX_BARS = 12


@dataclass(frozen=True)
class Bar:
    """One field's contribution, with its share of the widest bar (0..1)."""

    field: str
    contribution: float
    share: float
    #: the field's value as stored with the decision (redacted), or None when not shown
    value: Any

    @property
    def increases(self) -> bool:
        return self.contribution > 0


@dataclass(frozen=True)
class Chart:
    bars: list[Bar]
    method: str
    output: str
    base_value: float | None
    margin: float | None
    #: fields beyond `MAX_BARS`, folded into the last bar
    folded: int


def contribution_chart(
    explanation: dict[str, Any] | None, inputs: dict[str, Any] | None
) -> Chart | None:
    """The chart for a stored explanation, or None when there is none to draw."""
    if not explanation:
        return None
    raw = explanation.get("contributions")
    if not isinstance(raw, dict):
        return None
    pairs = [
        (str(name), float(value))
        for name, value in raw.items()
        if isinstance(value, int | float) and math.isfinite(value)
    ]
    if not pairs:
        return None
    pairs.sort(key=lambda pair: (-abs(pair[1]), pair[0]))
    folded = 0
    if len(pairs) > MAX_BARS:
        rest = pairs[MAX_BARS - 1 :]
        folded = len(rest)
        pairs = [*pairs[: MAX_BARS - 1], (f"{folded} other fields", sum(v for _, v in rest))]
    widest = max((abs(v) for _, v in pairs), default=0.0) or 1.0
    values = inputs or {}
    bars = [Bar(name, value, abs(value) / widest, values.get(name)) for name, value in pairs]
    return Chart(
        bars=bars,
        method=str(explanation.get("method", "unknown")),
        output=str(explanation.get("output", "")),
        base_value=_number(explanation.get("base_value")),
        margin=_number(explanation.get("margin")),
        folded=folded,
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
