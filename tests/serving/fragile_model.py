"""A Python-callable model that is slow or fails on request, for failure-handling tests."""

from __future__ import annotations

import time

import numpy as np
import numpy.typing as npt
import pandas as pd


class FragileModel:
    """Sleeps `delay` seconds for rows that ask for it; raises for rows with `explode` > 0."""

    classes_ = np.array([0, 1])
    feature_names_in_ = np.array(["delay", "explode"])

    def predict_proba(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        if (frame["explode"] > 0).any():
            raise RuntimeError("the model blew up")
        time.sleep(float(frame["delay"].max()))
        positive = np.full(len(frame), 0.25)
        return np.column_stack([1 - positive, positive])
