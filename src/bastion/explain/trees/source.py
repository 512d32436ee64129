"""What the tree explainer needs from a framework: its trees and how it sees a row.

Each parser module builds a `TreeSource` from an adapter: the trees, how request records
become the exact matrix the framework predicts on, and the framework's own raw output and
contributions (the reference the fast path is checked against, and its fallback).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bastion.explain.explanation import Output
from bastion.explain.trees.model import CATEGORY_LEFT, CATEGORY_RIGHT, Floats, Splits, Tree
from bastion.runtime.adapter import Label

Rows = Sequence[Mapping[str, Any]]


@dataclass(frozen=True)
class TreeSource:
    """A tree ensemble as Bastion explains it.

    Attributes
    ----------
    trees : list of Tree
    fields : list of str
        The request field behind each model feature (model feature order); a field
        encoded into several features (one-hot) appears once per feature.
    encode : callable
        Records to the model-space matrix, shape ``(n, len(fields))``: what the adapter's
        ``predict_records`` hands the framework (category codes, NaN for missing).
    native_raw : callable
        Matrix to the framework's raw output, shape ``(n, n_outputs)``.
    native_contributions : callable or None
        Matrix to the framework's exact TreeSHAP values, shape ``(n, n_outputs, n + 1)``,
        bias last; used when the tables cannot be built or disagree with the model.
    output : str
        The space of the raw output (``log_odds``, ``probability`` or ``value``).
    targets : list
        The class each output explains (``[None]`` for regressors).
    tiny_is_zero : bool
        The framework reads ``|x| <= 1e-35`` as 0.0 (LightGBM drops such values when it
        turns a dense row into its sparse form).
    float32 : bool
        The framework rounds inputs to float32 before comparing them with thresholds.
    native_method : str
        What `Explanation.method` says when `native_contributions` are used.
    unsure : callable or None
        Records to a per-row flag: the framework reads this row in a way the encoding
        cannot reproduce (XGBoost and categories it never saw); such rows are explained
        by `native_records`.
    native_records : callable or None
        Records to the framework's own ``(contributions, raw)``, read exactly as the
        adapter reads them.
    request_fields : list of str or None
        The request fields contributions are reported for, in signature order, when
        `fields` repeats or reorders them (the features of a field are summed).
    tolerance : float
        How closely the framework's raw output is reproduced (relative to its scale):
        float64 sums for LightGBM and scikit-learn, float32 sums for XGBoost.
    """

    trees: list[Tree]
    fields: list[str]
    encode: Callable[[Rows], Floats]
    native_raw: Callable[[Floats], Floats]
    native_contributions: Callable[[Floats], Floats] | None
    output: Output
    targets: list[Label | None]
    tiny_is_zero: bool = False
    float32: bool = False
    native_method: str = "tree_shap_native"
    tolerance: float = 1e-9
    unsure: Callable[[Rows], list[bool]] | None = None
    native_records: Callable[[Rows], tuple[Floats, Floats]] | None = None
    request_fields: list[str] | None = None


def margin_targets(
    task: str, classes: Sequence[Label], n_outputs: int
) -> tuple[Output, list[Label | None]]:
    """The space a boosted model's raw output lives in, and the class each output explains:
    one logit for a binary classifier (its positive class), one per class otherwise."""
    if task == "regression":
        return "value", [None]
    if n_outputs == 1:
        return "log_odds", [classes[1]]
    return "log_odds", list(classes)


def probe_matrix(splits: Splits, n_features: int, rows: int = 256, seed: int = 0) -> Floats:
    """Rows that land on both sides of every split, on thresholds, missing and unseen codes.

    Used at start-up to check that the parsed trees route rows exactly as the framework does.
    """
    rng = np.random.default_rng(seed)
    candidates: list[list[float]] = [[0.0, np.nan] for _ in range(n_features)]
    categorical = (splits.kind == CATEGORY_LEFT) | (splits.kind == CATEGORY_RIGHT)
    for s in range(len(splits.feature)):
        f = int(splits.feature[s])
        if categorical[s]:
            codes = splits.categories[splits.category_start[s] : splits.category_end[s]]
            candidates[f].extend(float(c) for c in codes)
            candidates[f].extend([-1.0, float(codes.max(initial=0) + 1)])
        else:
            t = float(splits.threshold[s])
            candidates[f].extend([t, np.nextafter(t, -np.inf), np.nextafter(t, np.inf)])
    matrix = np.empty((rows, n_features))
    for f, values in enumerate(candidates):
        matrix[:, f] = rng.choice(np.asarray(values, dtype=np.float64), size=rows)
    return matrix
