"""scikit-learn trees and forests as `Tree` lists, read from each fitted ``tree_``.

Covers decision trees, random forests and extra trees (classifiers explain class
probabilities, as shap's TreeExplainer does; forests average their trees) and gradient
boosting (the raw score: log-odds for classifiers), alone or at the end of a pipeline whose
encoded columns are traced back to request fields (`encoded.trace`). scikit-learn compares float32 inputs
with ``x <= threshold``, sends NaN the way ``missing_go_to_left`` says, and weighs TreeSHAP by
weighted sample counts. Its reference contributions come from shap's TreeExplainer.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from bastion.explain.encoded import trace
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


class NotTrees(Exception):
    """The estimator is not a tree model (or a pipeline ending in one) this module reads."""


def split_tree_pipeline(estimator: Any, fields: list[str]) -> tuple[Any | None, Any, list[str]]:
    """(transforming steps or None, the tree model, the field behind each model feature).

    Raises `NotTrees` when the (final) estimator is not a tree model this module reads, and
    `Untraceable` when a pipeline's steps cannot be traced back to request fields.
    """
    steps = getattr(estimator, "steps", None)
    final = steps[-1][1] if steps is not None else estimator
    if not is_tree_ensemble(final):
        raise NotTrees(f"{type(final).__name__} is not a tree model")
    if steps is None or len(steps) == 1:
        return None, final, list(fields)
    prefix = estimator[:-1]
    return prefix, final, trace(prefix, list(fields))


def sklearn_source(estimator: Any, fields: list[str], classes: list[Label]) -> TreeSource:
    """A scikit-learn tree model, or a pipeline ending in one, with records encoded as it
    reads them (through the pipeline's transformers, then float32)."""
    prefix, final, traced = split_tree_pipeline(estimator, fields)
    trees, n_outputs = sklearn_trees(final)
    boosting = type(final).__name__ in _BOOSTING
    classifier = hasattr(final, "classes_")
    # as the adapter does: estimators fitted on bare arrays warn when given a DataFrame
    named = getattr(estimator, "feature_names_in_", None) is not None
    final_names = getattr(final, "feature_names_in_", None)

    def encode(rows: Rows) -> Floats:
        if prefix is None:
            return np.array([[row[f] for f in fields] for row in rows], dtype=np.float64)
        frame = pd.DataFrame({f: [row[f] for row in rows] for f in fields})
        encoded = prefix.transform(frame if named else frame.to_numpy())
        if hasattr(encoded, "toarray"):
            encoded = encoded.toarray()
        return np.asarray(encoded, dtype=np.float64).reshape(len(rows), len(traced))

    def data(matrix: Floats) -> Any:
        if final_names is None:
            return matrix
        return pd.DataFrame(matrix, columns=list(final_names))

    def native_raw(matrix: Floats) -> Floats:
        if boosting and classifier:
            raw = final.decision_function(data(matrix))
        elif classifier:
            raw = final.predict_proba(data(matrix))
            raw = raw[:, 1:] if raw.shape[1] == 2 else raw
        else:
            raw = final.predict(data(matrix))
        return np.asarray(raw, dtype=np.float64).reshape(len(matrix), n_outputs)

    explainers: list[Any] = []  # shap's, built on first use only

    def native_contributions(matrix: Floats) -> Floats:
        if not explainers:
            explainers.append(shap().TreeExplainer(final))
        explainer = explainers[0]
        values = np.asarray(explainer.shap_values(data(matrix)), dtype=np.float64)
        values = values.reshape(len(matrix), len(traced), -1)  # (n, features, outputs)
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
        fields=traced,
        encode=encode,
        native_raw=native_raw,
        native_contributions=native_contributions,
        output=output,
        targets=targets,
        float32=True,
        native_method="tree_shap_shap",
        request_fields=list(fields),
    )
