"""The window summary as alert rules see it, and the values a rule read.

`clean_summary` makes any summary CEL-ready: plain values only, NaN and infinity as null,
every top-level variable present. `referenced_values` picks out what an expression read,
so a notification can say *why* an alert fired.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

#: the summary's top-level variables; each is present (``{}`` when empty) so ``has()`` works
SUMMARY_KEYS = (
    "features",
    "prediction",
    "dataset",
    "performance",
    "estimated",
    "reference",
    "window",
)
#: at most this many features are named in an alert's ``value``
MAX_VALUE_FEATURES = 5
_PATH = re.compile(
    r"\b(" + "|".join(SUMMARY_KEYS) + r")((?:\.[A-Za-z_][A-Za-z0-9_]*)+)(?![A-Za-z0-9_]|\s*\()"
)
_FEATURE_FIELD = re.compile(r"\bfeatures\[\s*[A-Za-z_][A-Za-z0-9_]*\s*\]\.([A-Za-z_][A-Za-z0-9_]*)")
_SMALL_IS_BAD = frozenset({"p_value", "adjusted_p_value"})


def clean_summary(summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary as plain CEL-ready values: NaN and ±inf become null, tuples lists,
    numpy scalars Python numbers, and every top-level variable is present."""
    cleaned = {str(k): _clean(v) for k, v in summary.items()}
    for key in SUMMARY_KEYS:
        if cleaned.get(key) is None:
            cleaned[key] = {}
    return cleaned


def _clean(value: Any) -> Any:
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    item = getattr(value, "item", None)  # numpy scalars
    if callable(item):
        return _clean(item())
    return str(value)


def referenced_values(expression: str, summary: Mapping[str, Any]) -> dict[str, Any]:
    """The summary values an expression reads, for messages: ``{"estimated.roc_auc": 0.71}``;
    for ``features[f].psi`` the features with the highest PSI (lowest, for p-values)."""
    values: dict[str, Any] = {}
    for match in _PATH.finditer(expression):
        node: Any = summary.get(match.group(1))
        for part in match.group(2).strip(".").split("."):
            node = node.get(part) if isinstance(node, Mapping) else None
        if node is None or isinstance(node, bool | int | float | str):
            values[match.group(0)] = node
    features = summary.get("features")
    for name in dict.fromkeys(_FEATURE_FIELD.findall(expression)):
        if not isinstance(features, Mapping):
            break
        scored = [
            (f, v[name])
            for f, v in features.items()
            if isinstance(v, Mapping)
            and isinstance(v.get(name), int | float)
            and not isinstance(v.get(name), bool)
        ]
        scored.sort(key=lambda fv: fv[1], reverse=name not in _SMALL_IS_BAD)
        values[f"features[*].{name}"] = dict(scored[:MAX_VALUE_FEATURES])
    return values
