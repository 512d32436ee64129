"""`TreeShapExplainer`: exact path-dependent TreeSHAP for LightGBM, XGBoost and scikit-learn trees.

At start-up the ensemble is parsed into per-leaf tables (`trees.tables`) and checked: the
compiled walk must reproduce the framework's own raw output on probe rows that straddle
every split threshold, hit missing values and unseen categories. If the tables would be too
large or the check fails, the explainer uses the framework's own exact contributions instead
and says so in `method` (``tree_shap_native``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from bastion.errors import InvalidInput
from bastion.explain.base import Explainer
from bastion.explain.explanation import Explanation, make_explanation
from bastion.explain.trees.kernel import Program, explain_matrix, program
from bastion.explain.trees.model import Floats, collect
from bastion.explain.trees.source import TreeSource, probe_matrix
from bastion.explain.trees.tables import TablesTooLarge, build_tables

logger = logging.getLogger(__name__)


class TreeShapExplainer(Explainer):
    """Explains a tree ensemble from a `TreeSource`; see the module docstring."""

    def __init__(self, source: TreeSource) -> None:
        self._source = source
        self.fields = list(source.request_fields or source.fields)
        self._n_features = len(source.fields)
        # model features to request fields (one-hot columns summed), None when one to one
        self._fold: Floats | None = None
        if source.fields != self.fields:
            self._fold = np.zeros((self._n_features, len(self.fields)))
            for feature, name in enumerate(source.fields):
                self._fold[feature, self.fields.index(name)] = 1.0
        self._n_outputs = len(source.targets)
        splits, edges, leaves, self._expected = collect(source.trees)
        self._expected = np.resize(self._expected, self._n_outputs)
        self._program: Program | None = None
        self._offset = np.zeros(self._n_outputs)
        self.reason: str | None = None
        try:
            tables = build_tables(leaves, self._n_features)
        except TablesTooLarge as exc:
            self._fallback(str(exc))
            return
        packed = program(splits, edges, tables, self._n_outputs, self._n_features)
        probe = probe_matrix(splits, self._n_features)
        _, raw = self._kernel(probe, packed)
        native = source.native_raw(probe)
        # a constant per output (XGBoost's base score; LightGBM's is inside the leaves)
        offset = np.median(native - raw, axis=0)
        error = float(np.max(np.abs(native - raw - offset), initial=0.0))
        if error > source.tolerance * max(1.0, float(np.max(np.abs(native), initial=0.0))):
            self._fallback(f"the parsed trees differ from the model by {error:.3g} on probe rows")
            return
        self._program = packed
        self._offset = offset
        self._base_row = (self._expected + offset)[None, :]
        self.method = "tree_shap"

    def _kernel(self, matrix: Floats, packed: Program) -> tuple[Floats, Floats]:
        return explain_matrix(
            matrix,
            packed,
            round_to_float32=self._source.float32,
            tiny_is_zero=self._source.tiny_is_zero,
        )

    @property
    def table_floats(self) -> int:
        """Floats held by the TreeSHAP tables (0 when the framework's own values are used)."""
        return self._program.table_floats if self._program is not None else 0

    def _fallback(self, reason: str) -> None:
        if self._source.native_contributions is None:
            raise TablesTooLarge(reason)
        logger.warning("tree explanations use the framework's own TreeSHAP: %s", reason)
        self.reason = reason
        self.method = self._source.native_method

    def explain(self, rows: Sequence[Mapping[str, Any]]) -> list[Explanation]:
        if not rows:
            return []
        matrix = self._encode(rows)
        if self._program is not None:
            phi, raw = self._kernel(matrix, self._program)
            base = np.repeat(self._base_row, len(raw), axis=0)
            raw += self._offset
        else:
            native = self._native(matrix)
            phi, base = native[:, :, :-1], native[:, :, -1]
            raw = self._source.native_raw(matrix)
        methods = [self.method] * len(rows)
        if self._source.unsure is not None and self._source.native_records is not None:
            flagged = [i for i, flag in enumerate(self._source.unsure(rows)) if flag]
            if flagged:
                native, native_raw = self._source.native_records([rows[i] for i in flagged])
                phi, base, raw = phi.copy(), base.copy(), raw.copy()
                phi[flagged], base[flagged] = native[:, :, :-1], native[:, :, -1]
                raw[flagged] = native_raw
                for i in flagged:
                    methods[i] = self._source.native_method
        return self._explanations(phi, base, raw, methods)

    def _encode(self, rows: Sequence[Mapping[str, Any]]) -> Floats:
        try:
            return self._source.encode(rows)
        except KeyError as exc:
            raise InvalidInput(f"a row lacks the model input {exc}") from exc
        except (TypeError, ValueError) as exc:
            raise InvalidInput(f"a row holds a value the model cannot read: {exc}") from exc

    def _native(self, matrix: Floats) -> Floats:
        contributions = self._source.native_contributions
        if contributions is None:  # _fallback refuses to build without them
            raise RuntimeError("no native contributions")
        return contributions(matrix)

    def _explanations(
        self, phi: Floats, base: Floats, raw: Floats, methods: list[str]
    ) -> list[Explanation]:
        """One explanation per row, of the positive class, the value, or the top class."""
        n = len(raw)
        if self._n_outputs == 1:
            picks = np.zeros(n, dtype=np.int64)
            chosen, bases, margins = phi[:, 0, :], base[:, 0].tolist(), raw[:, 0].tolist()
        else:
            picks = raw.argmax(axis=1)
            every = np.arange(n)
            chosen = phi[every, picks]
            bases, margins = base[every, picks].tolist(), raw[every, picks].tolist()
        contributions = (chosen if self._fold is None else chosen @ self._fold).tolist()
        return [
            make_explanation(
                methods[i],
                bases[i],
                dict(zip(self.fields, contributions[i], strict=True)),
                self._source.output,
                margins[i],
                target=self._source.targets[int(picks[i])],
            )
            for i in range(n)
        ]
