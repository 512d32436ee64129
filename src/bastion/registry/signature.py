"""Input and output signatures: what a model expects and what it returns.

An input signature is inferred from a sample or training frame: per column its kind
(numeric, categorical, boolean, text), dtype, nullability, numeric range and quantiles, and
the categories seen. It is stored with the model version and is what later guards check
requests against, so it is plain JSON.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field

ColumnKind = Literal["numeric", "categorical", "boolean", "text"]

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: an object column with at most this many distinct values is categorical, otherwise text
MAX_CATEGORIES = 50


class ColumnSignature(BaseModel):
    name: str
    kind: ColumnKind
    dtype: str
    nullable: bool = False
    min: float | None = None
    max: float | None = None
    quantiles: dict[str, float] | None = None
    categories: list[str | int | float | bool] | None = None
    max_length: int | None = None


class InputSignature(BaseModel):
    columns: list[ColumnSignature] = Field(default_factory=list)
    rows_seen: int = 0

    @property
    def names(self) -> list[str]:
        return [column.name for column in self.columns]

    def column(self, name: str) -> ColumnSignature | None:
        return next((c for c in self.columns if c.name == name), None)


class OutputSignature(BaseModel):
    task: Literal["classification", "regression"]
    classes: list[str | int] = Field(default_factory=list)


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _column_signature(name: str, series: pd.Series[Any]) -> ColumnSignature:
    nullable = bool(series.isna().any())
    present = series.dropna()
    dtype = str(series.dtype)
    if pd.api.types.is_bool_dtype(series):
        return ColumnSignature(name=name, kind="boolean", dtype=dtype, nullable=nullable)
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = [_plain(c) for c in series.cat.categories]
        return ColumnSignature(
            name=name, kind="categorical", dtype=dtype, nullable=nullable, categories=categories
        )
    if pd.api.types.is_numeric_dtype(series):
        values = present.astype(float)
        finite = values[np.isfinite(values)]
        if finite.empty:
            return ColumnSignature(name=name, kind="numeric", dtype=dtype, nullable=nullable)
        quantiles = {f"p{int(q * 100):02d}": float(finite.quantile(q)) for q in QUANTILES}
        return ColumnSignature(
            name=name,
            kind="numeric",
            dtype=dtype,
            nullable=nullable,
            min=float(finite.min()),
            max=float(finite.max()),
            quantiles=quantiles,
        )
    text = present.astype(str)
    distinct = text.unique()
    if len(distinct) <= MAX_CATEGORIES and len(distinct) < max(len(text), 1):
        return ColumnSignature(
            name=name,
            kind="categorical",
            dtype=dtype,
            nullable=nullable,
            categories=sorted(str(v) for v in distinct),
        )
    max_length = int(text.str.len().max()) if len(text) else 0
    return ColumnSignature(
        name=name, kind="text", dtype=dtype, nullable=nullable, max_length=max_length
    )


def infer_input_signature(frame: pd.DataFrame) -> InputSignature:
    """Describe each column of a sample or training frame."""
    columns = [_column_signature(str(name), frame[name]) for name in frame.columns]
    return InputSignature(columns=columns, rows_seen=len(frame))


def signature_from_names(names: list[str]) -> InputSignature:
    """A bare signature when only feature names are known (no sample was given)."""
    return InputSignature(
        columns=[ColumnSignature(name=n, kind="numeric", dtype="float64") for n in names]
    )


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over the frame's column names, dtypes and values: identifies training data."""
    digest = hashlib.sha256()
    digest.update(repr([(str(c), str(t)) for c, t in frame.dtypes.items()]).encode())
    hashed = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest.update(hashed.tobytes())
    return digest.hexdigest()
