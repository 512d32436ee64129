"""A Python-callable binary model whose inputs include free text, for text-drift tests."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd


class NoteModel:
    """Scores by income alone; takes the note as an input so it is a text feature."""

    classes_ = np.array([0, 1])
    feature_names_in_ = np.array(["income", "note"])

    def predict_proba(self, frame: pd.DataFrame) -> npt.NDArray[np.float64]:
        positive = 1.0 / (1.0 + np.exp(frame["income"].to_numpy(dtype=np.float64) / 40_000.0))
        return np.column_stack([1 - positive, positive])
