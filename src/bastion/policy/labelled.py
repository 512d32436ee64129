"""Labelled cases for tuning: the 0/1 labels of a file and the scores to tune on.

The scores come from a column of the file, or, when it has none, from the deployment's
model version run over the file's feature columns, so the thresholds are tuned on exactly
the numbers serving computes. Every check names the file, the column and what was found.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import numpy.typing as npt
import pandas as pd

from bastion.errors import InvalidInput
from bastion.registry import ModelVersion
from bastion.runtime import ModelAdapter

FloatArray = npt.NDArray[np.float64]

#: how many rows go through the model at once: bounds memory on large label files
SCORING_CHUNK = 50_000


def _require_rows(frame: pd.DataFrame, source: str) -> None:
    if frame.empty:
        raise InvalidInput(f"{source} has no rows")


def _require_column(frame: pd.DataFrame, column: str, source: str, option: str) -> None:
    if column not in frame.columns:
        known = ", ".join(str(c) for c in frame.columns[:20])
        raise InvalidInput(
            f"{source} has no column {column!r} (columns: {known}); name it with {option}"
        )


def label_values(frame: pd.DataFrame, column: str, *, source: str) -> npt.NDArray[np.int8]:
    """The label column as int8 0/1; missing or other values are an error naming them."""
    _require_rows(frame, source)
    _require_column(frame, column, source, "--label-column")
    values = frame[column]
    if values.isna().any():
        raise InvalidInput(
            f"{source} column {column!r} has {int(values.isna().sum())} missing label(s)"
        )
    numeric = pd.to_numeric(values, errors="coerce")
    bad = numeric.isna() | ~numeric.isin([0, 1])
    if bad.any():
        examples = ", ".join(repr(v) for v in values[bad].drop_duplicates().head(5).tolist())
        raise InvalidInput(
            f"{source} column {column!r} must hold labels 0 or 1, got {examples} "
            f"in {int(bad.sum())} row(s)"
        )
    return numeric.to_numpy(dtype=np.int8)


def column_scores(frame: pd.DataFrame, column: str, *, source: str) -> FloatArray:
    """A score column as float64 within [0, 1]."""
    _require_rows(frame, source)
    numeric = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numeric) | (numeric < 0) | (numeric > 1)
    if bad.any():
        raise InvalidInput(
            f"{source} column {column!r} must hold scores within [0, 1], "
            f"{int(bad.sum())} row(s) do not"
        )
    return numeric


def model_scores(
    frame: pd.DataFrame, version: ModelVersion, adapter: ModelAdapter, *, source: str
) -> FloatArray:
    """P(positive class), the second class, as serving's ``score``, for every row.

    Raises `InvalidInput` when the model is not a binary classifier or the file lacks any of
    its input columns (all of them are named).
    """
    _require_rows(frame, source)
    classes = version.output_signature.classes
    if version.output_signature.task != "classification" or len(classes) != 2:
        raise InvalidInput(
            f"score thresholds need a binary classifier; {version.ref} is a "
            f"{version.output_signature.task} model with {len(classes)} classes"
        )
    columns = version.input_signature.names
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(
            f"{source} has no score column and lacks input columns of {version.ref}: "
            f"{', '.join(missing)}"
        )
    parts = []
    for start in range(0, len(frame), SCORING_CHUNK):
        chunk = frame.iloc[start : start + SCORING_CHUNK][columns]
        records = cast(list[dict[str, object]], chunk.to_dict(orient="records"))
        parts.append(np.asarray(adapter.predict_records(records, columns))[:, 1])
    return np.concatenate(parts).astype(np.float64)
