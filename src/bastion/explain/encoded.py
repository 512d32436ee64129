"""Which request field each column of a fitted scikit-learn transformer's output comes from.

Linear contributions are exact in the encoded space (one coefficient per encoded column);
to report them per request field, every encoded column is traced back through the pipeline:
scalers and imputers keep columns one to one, a one-hot encoder expands a field into one
column per kept category, a column transformer routes fields to its parts. Anything else is
not traced (`Untraceable`), and the caller falls back to a model-agnostic method.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: transformers that output one column per input column, in order
_ONE_TO_ONE = frozenset(
    {
        "StandardScaler",
        "MinMaxScaler",
        "MaxAbsScaler",
        "RobustScaler",
        "Normalizer",
        "PowerTransformer",
        "QuantileTransformer",
        "OrdinalEncoder",
        "Binarizer",
    }
)


class Untraceable(Exception):
    """The pipeline contains a step whose output columns cannot be traced to fields."""


def trace(step: Any, fields: list[str]) -> list[str]:
    """The source field of each output column of fitted `step` given input columns `fields`."""
    name = type(step).__name__
    if step == "passthrough" or step is None:
        return list(fields)
    if name == "Pipeline":
        for _, inner in step.steps:
            fields = trace(inner, fields)
        return fields
    if name == "ColumnTransformer":
        return _column_transformer(step, fields)
    if name in _ONE_TO_ONE:
        return list(fields)
    if name == "SimpleImputer":
        if getattr(step, "add_indicator", False):
            raise Untraceable("SimpleImputer with add_indicator")
        kept = getattr(step, "statistics_", None)
        if kept is not None and not getattr(step, "keep_empty_features", False):
            # columns that were all missing at fit time are dropped
            return [f for f, s in zip(fields, kept, strict=True) if not _is_nan(s)]
        return list(fields)
    if name == "OneHotEncoder":
        return _one_hot(step, fields)
    raise Untraceable(f"{name} is not traced to request fields")


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and np.isnan(value)


def _one_hot(encoder: Any, fields: list[str]) -> list[str]:
    if getattr(encoder, "_infrequent_enabled", False):
        raise Untraceable("OneHotEncoder with infrequent categories")
    drop = getattr(encoder, "drop_idx_", None)
    out: list[str] = []
    for index, (field, categories) in enumerate(zip(fields, encoder.categories_, strict=True)):
        dropped = drop is not None and drop[index] is not None
        out.extend([field] * (len(categories) - (1 if dropped else 0)))
    return out


def _column_transformer(transformer: Any, fields: list[str]) -> list[str]:
    out: list[str] = []
    for _, step, columns in transformer.transformers_:
        if step == "drop":
            continue
        selected = _select(columns, fields)
        if not selected:
            continue
        out.extend(trace(step, selected))
    return out


def _select(columns: Any, fields: list[str]) -> list[str]:
    if isinstance(columns, str):
        return [columns]
    if isinstance(columns, slice):
        return fields[columns]
    values = list(np.asarray(columns).reshape(-1))
    if values and isinstance(values[0], np.bool_ | bool):
        return [f for f, keep in zip(fields, values, strict=True) if keep]
    if values and isinstance(values[0], np.integer | int):
        return [fields[int(i)] for i in values]
    return [str(v) for v in values]
