"""`LinearExplainer`: exact contributions of linear and logistic models, per request field.

For a linear model on encoded inputs ``z = T(x)`` the margin is ``w · z + b``, so
``w_c (z_c - mean(z_c))`` is column ``c``'s exact contribution, measured from the mean of the
reference sample (`background`); the base value is ``w · mean(z) + b``. Columns are summed
back to the field they were encoded from (`encoded.trace`). Output: log-odds for logistic
regression, the value for regressors and other linear scores.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bastion.explain.base import Explainer
from bastion.explain.encoded import Untraceable, trace
from bastion.explain.explanation import Explanation, Output, make_explanation
from bastion.runtime.adapter import Label

Floats = npt.NDArray[np.float64]


class NotLinear(Exception):
    """The model is not a linear model (or pipeline ending in one) Bastion can trace."""


def split_pipeline(estimator: Any) -> tuple[Any | None, Any]:
    """(the transforming steps or None, the final linear model) of a fitted estimator."""
    steps = getattr(estimator, "steps", None)
    if steps is not None:
        final = steps[-1][1]
        prefix = estimator[:-1] if len(steps) > 1 else None
    else:
        final, prefix = estimator, None
    from sklearn.linear_model._base import LinearClassifierMixin, LinearModel

    if not isinstance(final, LinearModel | LinearClassifierMixin):
        raise NotLinear(f"{type(final).__name__} is not a linear model")
    return prefix, final


class LinearExplainer(Explainer):
    """Exact contributions of a fitted scikit-learn linear model or linear pipeline."""

    method = "linear"

    def __init__(
        self, estimator: Any, fields: list[str], classes: list[Label], background: pd.DataFrame
    ) -> None:
        self.fields = list(fields)
        self._estimator = estimator
        # as the adapter does: estimators fitted on bare arrays warn when given a DataFrame
        self._named = hasattr(estimator, "feature_names_in_")
        self._prefix, self._final = split_pipeline(estimator)
        try:
            sources = trace(self._prefix, self.fields) if self._prefix is not None else fields
        except Untraceable as exc:
            raise NotLinear(str(exc)) from exc
        coef = np.atleast_2d(np.asarray(self._final.coef_, dtype=np.float64))
        if coef.shape[1] != len(sources):
            raise NotLinear(
                f"the model has {coef.shape[1]} coefficients but {len(sources)} traced columns"
            )
        self._coef = coef  # (k, n_encoded)
        self._intercept = np.resize(np.asarray(self._final.intercept_, dtype=np.float64), len(coef))
        # encoded column -> field, as a (n_encoded, n_fields) 0/1 matrix
        self._fold = np.zeros((len(sources), len(self.fields)))
        for column, field in enumerate(sources):
            self._fold[column, self.fields.index(field)] = 1.0
        self._mean = self._encode(background[self.fields]).mean(axis=0)
        self._base = self._coef @ self._mean + self._intercept
        self._classifier = hasattr(self._final, "classes_")
        if self._classifier and len(coef) == 1:
            self._targets: list[Label | None] = [classes[1] if len(classes) > 1 else None]
        elif self._classifier:
            self._targets = list(classes)
        else:
            self._targets = [None]
        logistic = type(self._final).__name__ == "LogisticRegression" or (
            getattr(self._final, "loss", None) == "log_loss"
        )
        self._output: Output = "log_odds" if logistic else "value"

    def _encode(self, frame: pd.DataFrame) -> Floats:
        data: Any = frame if self._named else frame.to_numpy()
        if self._prefix is not None:
            data = self._prefix.transform(data)
        if hasattr(data, "toarray"):
            data = data.toarray()
        return np.asarray(data, dtype=np.float64)

    def explain(self, rows: Sequence[Mapping[str, Any]]) -> list[Explanation]:
        if not rows:
            return []
        frame = pd.DataFrame({f: [row[f] for row in rows] for f in self.fields})
        encoded = self._encode(frame)
        # the margin comes from the model itself, so the additivity check tests the tracing
        data = frame if self._named else frame.to_numpy()
        score = self._estimator.decision_function if self._classifier else self._estimator.predict
        margins = np.asarray(score(data), dtype=np.float64).reshape(len(rows), -1)
        explanations = []
        for i in range(len(rows)):
            k = int(np.argmax(margins[i])) if margins.shape[1] > 1 else 0
            per_column = self._coef[k] * (encoded[i] - self._mean)
            per_field = per_column @ self._fold
            explanations.append(
                make_explanation(
                    self.method,
                    float(self._base[k]),
                    dict(zip(self.fields, per_field.tolist(), strict=True)),
                    self._output,
                    float(margins[i, k]),
                    target=self._targets[k],
                )
            )
        return explanations
