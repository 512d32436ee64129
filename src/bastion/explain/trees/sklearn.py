"""scikit-learn trees and forests as `Tree` lists, read from each fitted ``tree_``.

Covers decision trees, random forests and extra trees (classifiers explain class
probabilities, as shap's TreeExplainer does; forests average their trees) and gradient
boosting (the raw score: log-odds for classifiers). scikit-learn compares float32 inputs
with ``x <= threshold``, sends NaN the way ``missing_go_to_left`` says, and weighs TreeSHAP by
weighted sample counts. Its reference contributions come from shap's TreeExplainer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bastion.explain.explanation import Output
from bastion.explain.shap_import import shap
from bastion.explain.trees.model import LESS_EQUAL, MISSING_DEFAULT, Floats, Tree
from bastion.explain.trees.source import Rows, TreeSource
from bastion.runtime.adapter import Label

_FORESTS = frozenset(
    {
        "DecisionTreeClassifier",
        "DecisionTreeRegressor",
        "ExtraTreeClassifier",
        "ExtraTreeRegressor",
        "RandomForestClassifier",
        "RandomForestRegressor",
        "ExtraTreesClassifier",
        "ExtraTreesRegressor",
    }
)
_BOOSTING = frozenset({"GradientBoostingClassifier", "GradientBoostingRegressor"})


def is_tree_ensemble(estimator: Any) -> bool:
    """Whether `estimator` is a scikit-learn tree model this module reads."""
    return type(estimator).__name__ in _FORESTS | _BOOSTING


def _tree(fitted: Any, output: int, values: Floats) -> Tree:
    """One `Tree` from a fitted ``tree_``; `values` is the leaf value per node."""
    tree = Tree(output=output)
    inner = fitted.tree_
    go_left = getattr(inner, "missing_go_to_left", None)
    for node in range(inner.node_count):
        cover = float(inner.weighted_n_node_samples[node])
        if inner.children_left[node] < 0:
            tree.add(cover=cover, value=float(values[node]))
            continue
        tree.add(
            cover=cover,
            feature=int(inner.feature[node]),
            threshold=float(inner.threshold[node]),
            kind=LESS_EQUAL,
            missing=MISSING_DEFAULT,
            default_left=bool(go_left[node]) if go_left is not None else True,
        )
    for node in range(inner.node_count):
        if inner.children_left[node] >= 0:
            tree.link(node, int(inner.children_left[node]), int(inner.children_right[node]))
    return tree


def sklearn_trees(estimator: Any) -> tuple[list[Tree], int]:
    """The trees of `estimator` and how many outputs they add to."""
    name = type(estimator).__name__
    if name in _BOOSTING:
        stages = estimator.estimators_  # (n_stages, k) regression trees
        rate = float(estimator.learning_rate)
        k = stages.shape[1]
        trees = [
            _tree(stage[c], c, stage[c].tree_.value[:, 0, 0] * rate)
            for stage in stages
            for c in range(k)
        ]
        return trees, k
    members = getattr(estimator, "estimators_", [estimator])
    scale = 1.0 / len(members)
    if name.endswith("Regressor"):
        return [_tree(m, 0, m.tree_.value[:, 0, 0] * scale) for m in members], 1
    n_classes = int(estimator.n_classes_)
    # a binary classifier explains P(second class); a multiclass one every class
    explained = [1] if n_classes == 2 else list(range(n_classes))
    trees = [
        _tree(m, output, _proportions(m)[:, c] * scale)
        for m in members
        for output, c in enumerate(explained)
    ]
    return trees, len(explained)


def _proportions(fitted: Any) -> Floats:
    value = np.asarray(fitted.tree_.value[:, 0, :], dtype=np.float64)
    total = value.sum(axis=1, keepdims=True)
    return np.asarray(np.divide(value, total, out=np.zeros_like(value), where=total > 0))


def sklearn_source(
    estimator: Any, fields: list[str], classes: list[Label], fitted_on_array: bool
) -> TreeSource:
    """A scikit-learn tree model with records encoded as it reads them (float32)."""
    trees, n_outputs = sklearn_trees(estimator)
    name = type(estimator).__name__
    boosting = name in _BOOSTING
    classifier = hasattr(estimator, "classes_")

    def encode(rows: Rows) -> Floats:
        matrix = np.empty((len(rows), len(fields)), dtype=np.float64)
        for index, field in enumerate(fields):
            matrix[:, index] = np.array([row[field] for row in rows], dtype=np.float64)
        return matrix

    def data(matrix: Floats) -> Any:
        return matrix if fitted_on_array else pd.DataFrame(matrix, columns=fields)

    def native_raw(matrix: Floats) -> Floats:
        if boosting and classifier:
            raw = estimator.decision_function(data(matrix))
        elif classifier:
            raw = estimator.predict_proba(data(matrix))
            raw = raw[:, 1:] if raw.shape[1] == 2 else raw
        else:
            raw = estimator.predict(data(matrix))
        return np.asarray(raw, dtype=np.float64).reshape(len(matrix), n_outputs)

    explainers: list[Any] = []  # shap's, built on first use only

    def native_contributions(matrix: Floats) -> Floats:
        if not explainers:
            explainers.append(shap().TreeExplainer(estimator))
        explainer = explainers[0]
        values = np.asarray(explainer.shap_values(data(matrix)), dtype=np.float64)
        values = values.reshape(len(matrix), len(fields), -1)  # (n, fields, outputs)
        values = values[:, :, -n_outputs:]
        base = np.resize(np.asarray(explainer.expected_value, dtype=np.float64), values.shape[2])
        bias = np.broadcast_to(base[-n_outputs:], (len(matrix), n_outputs))[:, None, :]
        return np.asarray(np.concatenate([values, bias], axis=1).transpose(0, 2, 1))

    output: Output
    targets: list[Label | None]
    if not classifier:
        output, targets = "value", [None]
    else:
        output = "log_odds" if boosting else "probability"
        targets = [classes[-1]] if n_outputs == 1 else list(classes)
    return TreeSource(
        trees=trees,
        fields=list(fields),
        encode=encode,
        native_raw=native_raw,
        native_contributions=native_contributions,
        output=output,
        targets=targets,
        float32=True,
        native_method="tree_shap_shap",
    )
