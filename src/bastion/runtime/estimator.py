"""Adapter for any object with the scikit-learn `predict` / `predict_proba` convention.

Shared by skops files, trusted pickles and Python callables, which differ only in how the
object is obtained.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bastion.errors import ArtifactError
from bastion.runtime.adapter import Label, ModelAdapter, Predictions, Task, as_predictions


def _python_label(value: Any) -> Label:
    """numpy scalars to plain `int`/`str` so labels serialize to JSON unchanged."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | int):
        return int(value)
    return str(value)


class EstimatorAdapter(ModelAdapter):
    """Wraps an estimator: classifiers need `predict_proba`, regressors `predict`."""

    def __init__(self, estimator: Any, framework: str, classes: list[Label] | None = None) -> None:
        self.estimator = estimator
        self.framework = framework
        self.task: Task = "classification" if hasattr(estimator, "predict_proba") else "regression"
        if not hasattr(estimator, "predict_proba") and not hasattr(estimator, "predict"):
            raise ArtifactError(f"{type(estimator).__name__} has neither predict nor predict_proba")
        names = getattr(estimator, "feature_names_in_", None)
        # scikit-learn estimators fitted on bare arrays warn when given a DataFrame.
        self._fitted_on_array = names is None and hasattr(estimator, "n_features_in_")
        self.feature_names = [str(n) for n in names] if names is not None else None
        if self.task == "classification":
            declared = getattr(estimator, "classes_", None)
            if classes is not None:
                if declared is not None and len(declared) != len(classes):
                    raise ArtifactError(
                        f"classes lists {len(classes)} labels but the model has {len(declared)}"
                    )
                self.classes = list(classes)
            elif declared is not None:
                self.classes = [_python_label(c) for c in declared]
            else:
                raise ArtifactError(
                    f"{type(estimator).__name__} has predict_proba but no classes_: "
                    "register it with --classes"
                )
        else:
            self.classes = []

    def predict(self, frame: pd.DataFrame) -> Predictions:
        data = frame.to_numpy() if self._fitted_on_array else frame
        if self.task == "classification":
            return as_predictions(self.estimator.predict_proba(data))
        return as_predictions(self.estimator.predict(data)).reshape(-1)
