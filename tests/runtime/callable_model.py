"""Models written as plain Python, registered as callables by the adapter tests."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd


class ThresholdModel:
    """A two-class classifier: P(high) is a logistic function of ``f0 + f1 / 2``."""

    classes_ = ("low", "high")

    def predict_proba(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        score = frame["f0"].to_numpy(dtype=np.float64) + 0.5 * frame["f1"].to_numpy(
            dtype=np.float64
        )
        high = 1.0 / (1.0 + np.exp(-score))
        return np.column_stack([1.0 - high, high])


def row_total(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    """A regressor as a plain function: the sum of each row."""
    return frame.sum(axis=1).to_numpy(dtype=np.float64)


def add_one(values: Any) -> Any:
    """Used in a `FunctionTransformer`, which skops does not trust by default."""
    return values + 1
