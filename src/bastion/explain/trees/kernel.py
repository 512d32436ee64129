"""The explain loop, compiled with numba: one pass over every split, then a gather per leaf.

Per row it decides every split of the ensemble once (with the framework's own rules for
``<``/``<=``, missing values and categorical sets), builds each leaf's mask of satisfied
features from its path, and adds the leaf's table row into the contributions. It also sums
the leaf each tree actually reaches, which is the model's raw output (checked against the
framework at start-up). Compiled once and cached on disk; ``nogil`` so worker threads run it
in parallel.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import numba
import numpy as np

from bastion.explain.trees.model import (
    CATEGORY_LEFT,
    CATEGORY_RIGHT,
    LESS,
    MISSING_AS_ZERO,
    MISSING_ZERO,
    Edges,
    Floats,
    Splits,
)
from bastion.explain.trees.tables import LeafTables

#: LightGBM's kZeroThreshold (a float32 constant): |x| at or below this counts as zero
_ZERO = float(np.float32(1e-35))


def _contains(categories: Any, start: int, end: int, code: int) -> bool:
    # a plain loop: numba compiles no generator expressions
    for position in range(start, end):  # noqa: SIM110
        if categories[position] == code:
            return True
    return False


def _goes_left(
    x: float,
    kind: int,
    threshold: float,
    missing: int,
    default_left: int,
    categories: Any,
    start: int,
    end: int,
) -> bool:
    if kind == CATEGORY_LEFT:
        if np.isnan(x) or x < 0.0:
            return False
        return _contains(categories, start, end, int(x))
    if np.isnan(x):
        if missing == MISSING_AS_ZERO:
            x = 0.0
        else:
            return default_left == 1
    if kind == CATEGORY_RIGHT:
        if x < 0.0:
            return True
        return not _contains(categories, start, end, int(x))
    if missing == MISSING_ZERO and -_ZERO <= x <= _ZERO:
        return default_left == 1
    if kind == LESS:
        return x < threshold
    return x <= threshold


def _explain(
    matrix: Any,
    round_to_float32: bool,
    tiny_is_zero: bool,
    feature: Any,
    threshold: Any,
    kind: Any,
    missing: Any,
    default_left: Any,
    category_start: Any,
    category_end: Any,
    categories: Any,
    parent: Any,
    edge_split: Any,
    edge_left: Any,
    edge_slot: Any,
    position: Any,
    depth: Any,
    table_start: Any,
    entry_start: Any,
    entry: Any,
    column_start: Any,
    value: Any,
    output: Any,
    table: Any,
    phi: Any,
    raw: Any,
) -> None:
    n_splits = feature.shape[0]
    n_leaves = depth.shape[0]
    x = np.empty(matrix.shape[1], dtype=np.float64)
    left = np.empty(n_splits, dtype=np.int8)
    failed = np.empty(parent.shape[0], dtype=np.int64)
    buffer = np.empty(entry.shape[0], dtype=np.float64)
    address = np.empty(depth.shape[0], dtype=np.int64)
    for row in range(matrix.shape[0]):
        # the row as the framework reads it
        for f in range(matrix.shape[1]):
            v = matrix[row, f]
            if round_to_float32:
                v = np.float64(np.float32(v))
            if tiny_is_zero and -_ZERO <= v <= _ZERO:
                v = 0.0
            x[f] = v
        for s in range(n_splits):
            goes = _goes_left(
                x[feature[s]],
                kind[s],
                threshold[s],
                missing[s],
                default_left[s],
                categories,
                category_start[s],
                category_end[s],
            )
            left[s] = 1 if goes else 0
        # slots failed on the way to each node, parents first (preorder)
        for node in range(parent.shape[0]):
            up = parent[node]
            if up < 0:
                failed[node] = 0
            else:
                missed = np.int64(left[edge_split[node]] ^ edge_left[node])
                failed[node] = failed[up] | (missed << np.int64(edge_slot[node]))
        # addresses first, then the loads: the gather loop has no other work, so many of
        # its (cache-missing) table loads are in flight at once
        for leaf in range(n_leaves):
            miss = failed[position[leaf]]
            d = np.int64(depth[leaf])
            if miss == 0:
                raw[row, output[leaf]] += value[leaf]
            address[leaf] = np.int64(table_start[leaf]) + (((1 << d) - 1) & ~miss) * d
        for leaf in range(n_leaves):
            base = address[leaf]
            first = entry_start[leaf]
            for k in range(entry_start[leaf + 1] - first):
                buffer[entry[first + k]] = table[base + k]
        for column in range(column_start.shape[0] - 1):
            total = 0.0
            for e in range(column_start[column], column_start[column + 1]):
                total += buffer[e]
            phi[row, column] = total


_inline = numba.njit(cache=True, nogil=True, inline="always")
_contains = _inline(_contains)
_goes_left = _inline(_goes_left)
_compiled = cast(Callable[..., None], numba.njit(cache=True, nogil=True)(_explain))


def explain_matrix(
    matrix: Floats,
    splits: Splits,
    edges: Edges,
    tables: LeafTables,
    n_outputs: int,
    n_features: int,
    *,
    round_to_float32: bool = False,
    tiny_is_zero: bool = False,
) -> tuple[Floats, Floats]:
    """Contributions and raw leaf sums for a model-space matrix.

    Parameters
    ----------
    matrix : ndarray of shape (n, n_features)
        Rows as the model sees them (category codes, NaN for missing).
    round_to_float32, tiny_is_zero : bool
        Read inputs as XGBoost and scikit-learn do (rounded to float32) or as LightGBM
        does (``|x| <= 1e-35`` is 0).

    Returns
    -------
    phi : ndarray of shape (n, n_outputs, n_features)
    raw : ndarray of shape (n, n_outputs)
        Sum of the reached leaves' values per output (no global offset).
    """
    phi = np.zeros((matrix.shape[0], n_outputs * n_features))
    raw = np.zeros((matrix.shape[0], n_outputs))
    _compiled(
        np.ascontiguousarray(matrix, dtype=np.float64),
        round_to_float32,
        tiny_is_zero,
        splits.feature,
        splits.threshold,
        splits.kind,
        splits.missing,
        splits.default_left,
        splits.category_start,
        splits.category_end,
        splits.categories,
        edges.parent,
        edges.split,
        edges.left,
        edges.slot,
        tables.position,
        tables.depth,
        tables.table_start,
        tables.entry_start,
        tables.entry,
        tables.column_start,
        tables.value,
        tables.output,
        tables.table,
        phi,
        raw,
    )
    return phi.reshape(matrix.shape[0], n_outputs, n_features), raw
