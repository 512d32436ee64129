"""XGBoost boosters as `Tree` lists, read from the booster's JSON model.

XGBoost compares in float32 (``x < threshold``, both rounded to float32), sends NaN the
``default_left`` way, sends the categories listed on a categorical split to the right, and
weighs TreeSHAP by hessian sums (``sum_hessian``). Categories of a DataFrame are re-coded to
the ones the model was trained with, which the model keeps (``get_categories``).
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from bastion.explain.trees.model import CATEGORY_RIGHT, LESS, MISSING_DEFAULT, Floats, Tree
from bastion.explain.trees.source import Rows, TreeSource, margin_targets
from bastion.runtime.xgboost import XGBoostAdapter


def _float32(value: float) -> float:
    return float(np.float32(value))


def xgboost_trees(model: dict[str, Any]) -> list[Tree]:
    """One `Tree` per tree of ``learner.gradient_booster.model`` in the JSON model."""
    trees = []
    for info, raw in zip(model["tree_info"], model["trees"], strict=True):
        tree = Tree(output=int(info))
        categories: dict[int, tuple[int, ...]] = {}
        segments = raw.get("categories_segments", [])
        sizes = raw.get("categories_sizes", [])
        for position, node in enumerate(raw.get("categories_nodes", [])):
            start = int(segments[position])
            chosen = raw["categories"][start : start + int(sizes[position])]
            categories[int(node)] = tuple(int(c) for c in chosen)
        split_types = raw.get("split_type", [0] * len(raw["left_children"]))
        for node, left in enumerate(raw["left_children"]):
            cover = float(raw["sum_hessian"][node])
            if left < 0:
                tree.add(cover=cover, value=_float32(raw["split_conditions"][node]))
                continue
            categorical = int(split_types[node]) == 1
            tree.add(
                cover=cover,
                feature=int(raw["split_indices"][node]),
                threshold=0.0 if categorical else _float32(raw["split_conditions"][node]),
                kind=CATEGORY_RIGHT if categorical else LESS,
                missing=MISSING_DEFAULT,
                default_left=bool(raw["default_left"][node]),
                categories=categories.get(node, ()),
            )
        for node, left in enumerate(raw["left_children"]):
            if left >= 0:
                tree.link(node, int(left), int(raw["right_children"][node]))
        trees.append(tree)
    return trees


def _model_categories(booster: Any, names: list[str]) -> dict[int, dict[Any, int]]:
    """Per categorical feature: category value to the code the model was trained with."""
    if not any(kind == "c" for kind in booster.feature_types or []):
        return {}
    exported = booster.get_categories(export_to_arrow=True).to_arrow()
    codes: dict[int, dict[Any, int]] = {}
    for name, values in exported:
        if values is not None:
            codes[names.index(name)] = {v: i for i, v in enumerate(values.to_pylist())}
    return codes


def xgboost_source(adapter: XGBoostAdapter) -> TreeSource:
    """The adapter's booster, with records encoded as XGBoost sees them (float32, codes)."""
    import xgboost

    booster = adapter.booster
    model = json.loads(booster.save_raw("json"))["learner"]["gradient_booster"]["model"]
    names: list[str] = list(adapter.feature_names or booster.feature_names or [])
    types = booster.feature_types
    codes = _model_categories(booster, names)
    n_outputs = max((int(i) for i in model["tree_info"]), default=0) + 1

    def encode(rows: Rows) -> Floats:
        matrix = np.empty((len(rows), len(names)), dtype=np.float64)
        for index, name in enumerate(names):
            mapping = codes.get(index)
            if mapping is not None:
                matrix[:, index] = [mapping.get(row[name], np.nan) for row in rows]
            else:
                matrix[:, index] = np.array([row[name] for row in rows], dtype=np.float64)
        return matrix

    def dmatrix(matrix: Floats) -> Any:
        return xgboost.DMatrix(
            matrix, feature_names=names, feature_types=types, enable_categorical=bool(codes)
        )

    def native_raw(matrix: Floats) -> Floats:
        raw = booster.predict(dmatrix(matrix), output_margin=True)
        return np.asarray(raw, dtype=np.float64).reshape(len(matrix), n_outputs)

    def native_contributions(matrix: Floats) -> Floats:
        values = booster.predict(dmatrix(matrix), pred_contribs=True)
        return np.asarray(values, dtype=np.float64).reshape(len(matrix), n_outputs, -1)

    def unsure(rows: Rows) -> list[bool]:
        # XGBoost re-codes a category it never saw in its own way: leave those rows to it
        return [
            any(row[names[i]] is not None and row[names[i]] not in m for i, m in codes.items())
            for row in rows
        ]

    def native_records(rows: Rows) -> tuple[Floats, Floats]:
        # the DMatrix exactly as XGBoostAdapter.predict builds it
        frame = pd.DataFrame({name: [row[name] for row in rows] for name in names})
        columns = {
            name: frame[name].astype("category")
            if codes.get(i) is not None
            else pd.to_numeric(frame[name], errors="coerce").astype(np.float64)
            for i, name in enumerate(names)
        }
        data = xgboost.DMatrix(pd.DataFrame(columns), enable_categorical=True)
        contributions = booster.predict(data, pred_contribs=True)
        raw = booster.predict(data, output_margin=True)
        return (
            np.asarray(contributions, dtype=np.float64).reshape(len(rows), n_outputs, -1),
            np.asarray(raw, dtype=np.float64).reshape(len(rows), n_outputs),
        )

    output, targets = margin_targets(adapter.task, adapter.classes, n_outputs)
    return TreeSource(
        trees=xgboost_trees(model),
        fields=names,
        encode=encode,
        native_raw=native_raw,
        native_contributions=native_contributions,
        output=output,
        targets=targets,
        float32=True,
        # XGBoost adds up leaves in float32: its raw output is only that exact
        tolerance=1e-5,
        unsure=unsure if codes else None,
        native_records=native_records,
    )
