"""`KernelExplainer`: shap's KernelSHAP for any model, with the number of samples set by a budget.

KernelSHAP works on numeric matrices, so each categorical or text field is coded as an index
into the values it can take in one explanation (the reference sample's values, then the
row's own), and decoded again before the model sees the rows. The number of coalition
samples is what ``budget_ms`` buys at the model's measured speed; fewer than shap's own
default marks the explanation truncated.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bastion.explain.base import Explainer
from bastion.explain.explanation import Explanation, Output, make_explanation
from bastion.explain.shap_import import shap
from bastion.registry.signature import InputSignature
from bastion.runtime.adapter import Label, ModelAdapter

Floats = npt.NDArray[np.float64]

#: shap's default sample count is 2 * fields + this
_SHAP_DEFAULT_EXTRA = 2048


class KernelExplainer(Explainer):
    """KernelSHAP of the model's probability (classifiers) or value (regressors)."""

    method = "kernel"

    def __init__(
        self,
        adapter: ModelAdapter,
        signature: InputSignature,
        background: pd.DataFrame,
        budget_ms: float,
    ) -> None:
        self.fields = signature.names
        self._adapter = adapter
        self._numeric = [c.kind == "numeric" for c in signature.columns]
        self._background = background[self.fields].reset_index(drop=True)
        self._output: Output = "probability" if adapter.task == "classification" else "value"
        started = time.perf_counter()
        self._reference = self._predict(self._background)
        per_sample = max(time.perf_counter() - started, 1e-6)
        wanted = 2 * len(self.fields) + _SHAP_DEFAULT_EXTRA
        # most of the budget buys samples; the rest pays for shap's own solve
        affordable = int(0.8 * budget_ms / 1000.0 / per_sample)
        self._samples = max(2 * len(self.fields) + 2, min(wanted, affordable))
        self._truncated = self._samples < wanted

    def _predict(self, frame: pd.DataFrame) -> Floats:
        values = np.asarray(self._adapter.predict(frame), dtype=np.float64)
        return values.reshape(len(frame), -1)

    def explain(self, rows: Sequence[Mapping[str, Any]]) -> list[Explanation]:
        return [self._one(row) for row in rows]

    def _one(self, row: Mapping[str, Any]) -> Explanation:
        own = self._predict(pd.DataFrame({f: [row[f]] for f in self.fields}))[0]
        if self._adapter.task == "classification":
            classes = self._adapter.classes
            k = len(classes) - 1 if len(classes) == 2 else int(np.argmax(own))
            target: Label | None = classes[k]
        else:
            k, target = 0, None
        values, coded_background, coded_row = self._code(row)

        def model(matrix: Floats) -> Floats:
            return self._predict(self._decode(matrix, values))[:, k]

        explainer = shap().KernelExplainer(model, coded_background)
        phi = np.asarray(
            explainer.shap_values(coded_row, nsamples=self._samples, silent=True), dtype=np.float64
        ).reshape(-1)
        base = float(self._reference[:, k].mean())
        return make_explanation(
            self.method,
            base,
            dict(zip(self.fields, phi.tolist(), strict=True)),
            self._output,
            float(own[k]),
            target=target,
            truncated=self._truncated,
            details={"samples": self._samples},
        )

    def _code(self, row: Mapping[str, Any]) -> tuple[list[list[Any]], Floats, Floats]:
        values: list[list[Any]] = []
        background = np.empty(self._background.shape)
        coded = np.empty((1, len(self.fields)))
        for j, field in enumerate(self.fields):
            column = self._background[field]
            if self._numeric[j]:
                values.append([])
                background[:, j] = pd.to_numeric(column, errors="coerce")
                number = row[field]
                coded[0, j] = np.nan if number is None else float(number)
                continue
            known = list(dict.fromkeys(column.tolist()))
            if row[field] not in known:
                known.append(row[field])
            values.append(known)
            background[:, j] = [known.index(v) for v in column.tolist()]
            coded[0, j] = known.index(row[field])
        return values, background, coded

    def _decode(self, matrix: Floats, values: list[list[Any]]) -> pd.DataFrame:
        columns: dict[str, Any] = {}
        for j, field in enumerate(self.fields):
            if self._numeric[j]:
                columns[field] = matrix[:, j]
            else:
                columns[field] = np.array(values[j], dtype=object)[matrix[:, j].astype(np.int64)]
        return pd.DataFrame(columns)
