"""`PermutationExplainer`: model-agnostic Shapley values by sampled permutations, within a budget.

For each sampled order of the fields, the fields are switched one by one from reference rows
(`background`) to the row being explained, and each field is credited with the change in the
mean model output it causes. Every permutation adds up exactly (the changes telescope from
the mean reference output to the row's output), so the average does too; more permutations
only reduce the sampling noise. Orders come in antithetic pairs (an order and its reverse),
from a generator seeded per row, so a row gets the same values alone or in a batch. Sampling
stops at ``budget_ms`` per row (after at least one pair), and the explanation says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bastion.explain.base import Explainer
from bastion.explain.explanation import Explanation, Output, make_explanation
from bastion.registry.signature import InputSignature
from bastion.runtime.adapter import Label, ModelAdapter

Floats = npt.NDArray[np.float64]

#: sampled orders per row when the budget allows (antithetic pairs)
PERMUTATIONS = 16


class PermutationExplainer(Explainer):
    """Sampled-permutation Shapley values of the model's probability or value."""

    method = "permutation"

    def __init__(
        self,
        adapter: ModelAdapter,
        signature: InputSignature,
        background: pd.DataFrame,
        budget_ms: float,
        *,
        permutations: int = PERMUTATIONS,
        seed: int = 0,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.fields = signature.names
        self._adapter = adapter
        self._numeric = {c.name for c in signature.columns if c.kind == "numeric"}
        self._background = background[self.fields].reset_index(drop=True)
        self._budget = budget_ms / 1000.0
        self._permutations = max(2, permutations + permutations % 2)
        self._seed = seed
        self._clock = clock
        self._output: Output = "probability" if adapter.task == "classification" else "value"
        self._reference = self._predict(self._background)  # (B, k)

    def _predict(self, frame: pd.DataFrame) -> Floats:
        values = np.asarray(self._adapter.predict(frame), dtype=np.float64)
        return values.reshape(len(frame), -1)

    def _target(self, output: Floats) -> tuple[int, Label | None]:
        """The explained column: P(positive class), the predicted class, or the value."""
        if self._adapter.task != "classification":
            return 0, None
        classes = self._adapter.classes
        k = len(classes) - 1 if len(classes) == 2 else int(np.argmax(output))
        return k, classes[k]

    def explain(self, rows: Sequence[Mapping[str, Any]]) -> list[Explanation]:
        return [self._one(row) for row in rows]

    def _one(self, row: Mapping[str, Any]) -> Explanation:
        started = self._clock()
        n_fields = len(self.fields)
        n_background = len(self._background)
        own = self._predict(self._rows_with(row, np.ones((1, n_fields), dtype=bool), 1))[0]
        k, target = self._target(own)
        base = float(self._reference[:, k].mean())
        rng = np.random.default_rng(self._seed)
        phi = np.zeros(n_fields)
        done = 0
        while done < self._permutations:
            order = rng.permutation(n_fields)
            for sequence in (order, order[::-1]):
                # step s switches the first s fields of the order to the row's values
                switched = np.zeros((n_fields + 1, n_fields), dtype=bool)
                for step in range(1, n_fields + 1):
                    switched[step] = switched[step - 1]
                    switched[step, sequence[step - 1]] = True
                frame = self._rows_with(row, switched, n_background)
                means = self._predict(frame)[:, k].reshape(n_fields + 1, n_background).mean(1)
                # the first and last steps are the reference mean and the row itself exactly
                means[0], means[-1] = base, own[k]
                phi[sequence] += np.diff(means)
            done += 2
            if self._clock() - started > self._budget:
                break
        phi /= done
        return make_explanation(
            self.method,
            base,
            dict(zip(self.fields, phi.tolist(), strict=True)),
            self._output,
            float(own[k]),
            target=target,
            truncated=done < self._permutations,
            details={"permutations": done},
        )

    def _rows_with(self, row: Mapping[str, Any], switched: npt.NDArray[np.bool_], n: int) -> Any:
        """``len(switched) * n`` rows: reference rows with the switched fields taken from `row`.

        With ``n == 1`` and one all-true step, just the row itself.
        """
        steps = len(switched)
        columns: dict[str, Any] = {}
        for j, field in enumerate(self.fields):
            value = row[field]
            if n == 1:
                reference: Any = np.array([value], dtype=object)
            else:
                reference = np.tile(self._background[field].to_numpy(dtype=object), steps)
            take = np.repeat(switched[:, j], n)
            column = np.where(take, np.array([value], dtype=object), reference)
            if field in self._numeric:
                columns[field] = pd.to_numeric(pd.Series(column), errors="coerce").to_numpy(
                    dtype=np.float64
                )
            else:
                columns[field] = column
        return pd.DataFrame(columns)
