"""A small reference sample for a version, from what the registry keeps about its inputs.

Bastion stores no training rows with a version, only the input signature: per numeric column
its quantiles (p01 … p99), per categorical column its categories. Linear contributions are
measured from the mean of this sample and model-agnostic methods replace fields by its rows,
so it is drawn to follow those marginals: numeric values by inverse-CDF interpolation
between the stored quantiles, categories in turn.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bastion.registry.signature import InputSignature

#: rows in the reference sample
BACKGROUND_ROWS = 32


def background_frame(
    signature: InputSignature, rows: int = BACKGROUND_ROWS, *, seed: int = 0
) -> pd.DataFrame:
    """`rows` synthetic reference rows with the signature's columns, in its order."""
    rng = np.random.default_rng(seed)
    columns: dict[str, Any] = {}
    # evenly spread probabilities, shuffled per column so columns are not co-monotone
    levels = (np.arange(rows) + 0.5) / rows
    for column in signature.columns:
        if column.kind == "numeric":
            columns[column.name] = _numeric(column.quantiles, column.min, column.max, levels, rng)
        elif column.kind == "boolean":
            columns[column.name] = np.arange(rows) % 2 == 0
        elif column.kind == "categorical" and column.categories:
            cycle = [column.categories[i % len(column.categories)] for i in range(rows)]
            columns[column.name] = pd.array(cycle, dtype=object)
        else:
            columns[column.name] = pd.array([""] * rows, dtype=object)
    return pd.DataFrame(columns)


def _numeric(
    quantiles: dict[str, float] | None,
    low: float | None,
    high: float | None,
    levels: np.ndarray[Any, np.dtype[np.float64]],
    rng: np.random.Generator,
) -> np.ndarray[Any, np.dtype[np.float64]]:
    if not quantiles:
        middle = 0.0 if low is None or high is None else (low + high) / 2.0
        return np.full(len(levels), middle)
    points = sorted((int(name[1:]) / 100.0, value) for name, value in quantiles.items())
    if low is not None:
        points.insert(0, (0.0, low))
    if high is not None:
        points.append((1.0, high))
    probability = np.array([p for p, _ in points])
    value = np.array([v for _, v in points])
    drawn = np.interp(levels, probability, value)
    return np.asarray(rng.permutation(drawn), dtype=np.float64)


def reference_medians(signature: InputSignature) -> dict[str, float]:
    """The median (p50) of each numeric column the signature has quantiles for."""
    return {
        c.name: float(c.quantiles["p50"])
        for c in signature.columns
        if c.kind == "numeric" and c.quantiles and "p50" in c.quantiles
    }
