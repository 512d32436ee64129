"""LightGBM boosters as `Tree` lists, read from ``Booster.dump_model()``.

LightGBM weighs TreeSHAP by data counts (``internal_count``/``leaf_count``), not hessians;
categorical splits list the category codes that go left (``"1||3"``); numeric splits carry
``missing_type`` (None: NaN compared as 0; Zero: 0 and NaN follow ``default_left``; NaN: NaN
follows ``default_left``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bastion.explain.trees.model import (
    CATEGORY_LEFT,
    LESS_EQUAL,
    MISSING_AS_ZERO,
    MISSING_DEFAULT,
    MISSING_ZERO,
    Floats,
    Tree,
)
from bastion.explain.trees.source import Rows, TreeSource, margin_targets
from bastion.runtime.lightgbm import LightGBMAdapter

_MISSING = {"None": MISSING_AS_ZERO, "Zero": MISSING_ZERO, "NaN": MISSING_DEFAULT}


def lightgbm_trees(dump: dict[str, Any]) -> list[Tree]:
    """One `Tree` per entry of ``dump["tree_info"]``; tree ``t`` adds to output ``t % k``."""
    per_iteration = int(dump.get("num_tree_per_iteration", 1))
    trees = []
    for info in dump["tree_info"]:
        tree = Tree(output=int(info["tree_index"]) % per_iteration)
        _add(tree, info["tree_structure"])
        trees.append(tree)
    return trees


def _add(tree: Tree, node: dict[str, Any]) -> int:
    if "leaf_value" in node:
        # a single-leaf tree has no leaf_count; its cover only needs to be positive
        return tree.add(cover=float(node.get("leaf_count", 1)), value=float(node["leaf_value"]))
    categorical = node["decision_type"] == "=="
    index = tree.add(
        cover=float(node["internal_count"]),
        feature=int(node["split_feature"]),
        threshold=0.0 if categorical else float(node["threshold"]),
        kind=CATEGORY_LEFT if categorical else LESS_EQUAL,
        missing=_MISSING[str(node["missing_type"])],
        default_left=bool(node["default_left"]),
        categories=(
            tuple(int(c) for c in str(node["threshold"]).split("||")) if categorical else ()
        ),
    )
    left = _add(tree, node["left_child"])
    right = _add(tree, node["right_child"])
    tree.link(index, left, right)
    return index


def lightgbm_source(adapter: LightGBMAdapter) -> TreeSource:
    """The adapter's booster with the adapter's own encoding of records."""
    booster = adapter.booster
    dump = booster.dump_model()
    names: list[str] = list(booster.feature_name())
    categories: list[list[Any]] = getattr(booster, "pandas_categorical", None) or []
    # as in the adapter: categorical features list their codes in feature_infos, in the
    # order of the pandas category lists saved with the model
    info = dump.get("feature_infos", {})
    categorical = [i for i, name in enumerate(names) if info.get(name, {}).get("values")]
    codes: dict[int, dict[Any, int]] = {
        index: {value: code for code, value in enumerate(values)}
        for index, values in zip(categorical, categories, strict=False)
    }
    per_iteration = int(dump.get("num_tree_per_iteration", 1))

    columns = [(name, codes.get(index)) for index, name in enumerate(names)]

    def encode(rows: Rows) -> Floats:
        # the same conversion as LightGBMAdapter.predict_records: unseen categories and
        # None become NaN
        return np.array(
            [
                [
                    row[name] if mapping is None else mapping.get(row[name], np.nan)
                    for name, mapping in columns
                ]
                for row in rows
            ],
            dtype=np.float64,
        ).reshape(len(rows), len(names))

    def native_raw(matrix: Floats) -> Floats:
        raw = booster.predict(matrix, raw_score=True, num_threads=1)
        return np.asarray(raw, dtype=np.float64).reshape(len(matrix), per_iteration)

    def native_contributions(matrix: Floats) -> Floats:
        values = booster.predict(matrix, pred_contrib=True, num_threads=1)
        return np.asarray(values, dtype=np.float64).reshape(
            len(matrix), per_iteration, len(names) + 1
        )

    output, targets = margin_targets(adapter.task, adapter.classes, per_iteration)
    return TreeSource(
        trees=lightgbm_trees(dump),
        fields=names,
        encode=encode,
        native_raw=native_raw,
        native_contributions=native_contributions,
        output=output,
        targets=targets,
        tiny_is_zero=True,
    )
