"""The explain loop, compiled with numba: every split once, then one table row per leaf.

Per row it decides every split of the ensemble once (with the framework's own rules for
``<``/``<=``, missing values and categorical sets), propagates each node's set of failed
features from its parent, finds each leaf's table row for its mask of satisfied features,
and sums the table entries column by column into the contributions. It also sums the leaf
each tree actually reaches, which is the model's raw output (checked against the framework
at start-up). Compiled once and cached on disk; ``nogil`` so worker threads run it in
parallel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import numba
import numpy as np
import numpy.typing as npt

from bastion.explain.trees.model import (
    CATEGORY_LEFT,
    CATEGORY_RIGHT,
    LESS,
    LESS_EQUAL,
    MISSING_AS_ZERO,
    MISSING_DEFAULT,
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
    wide: Any,
    wide_at: Any,
    narrow: Any,
    narrow_at: Any,
    floats: Any,
    floats_at: Any,
    plain_end: Any,
    table: Any,
    phi: Any,
    raw: Any,
) -> None:
    # the arrays of a `Program`, in the order of _WIDE, _NARROW and _FLOATS
    feature = wide[wide_at[0] : wide_at[1]]
    category_start = wide[wide_at[1] : wide_at[2]]
    category_end = wide[wide_at[2] : wide_at[3]]
    categories = wide[wide_at[3] : wide_at[4]]
    parent = wide[wide_at[4] : wide_at[5]]
    edge_split = wide[wide_at[5] : wide_at[6]]
    position = wide[wide_at[6] : wide_at[7]]
    table_start = wide[wide_at[7] : wide_at[8]]
    entry_leaf = wide[wide_at[8] : wide_at[9]]
    column_start = wide[wide_at[9] : wide_at[10]]
    output = wide[wide_at[10] : wide_at[11]]
    kind = narrow[narrow_at[0] : narrow_at[1]]
    missing = narrow[narrow_at[1] : narrow_at[2]]
    default_left = narrow[narrow_at[2] : narrow_at[3]]
    edge_left = narrow[narrow_at[3] : narrow_at[4]]
    edge_slot = narrow[narrow_at[4] : narrow_at[5]]
    depth = narrow[narrow_at[5] : narrow_at[6]]
    stride = narrow[narrow_at[6] : narrow_at[7]]
    entry_slot = narrow[narrow_at[7] : narrow_at[8]]
    threshold = floats[floats_at[0] : floats_at[1]]
    value = floats[floats_at[1] : floats_at[2]]
    n_splits = feature.shape[0]
    n_leaves = depth.shape[0]
    x = np.empty(matrix.shape[1], dtype=np.float64)
    left = np.empty(n_splits, dtype=np.int8)
    failed = np.empty(parent.shape[0], dtype=np.int64)
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
        # numeric splits whose NaN goes by default_left or reads as 0 come first (sorted by
        # kind and missing rule): decided without branches, `<=` then `<`
        for s in range(0, plain_end[0]):
            v = x[feature[s]]
            nan = v != v
            below = (0.0 if nan else v) <= threshold[s]
            left[s] = default_left[s] if nan and missing[s] == MISSING_DEFAULT else below
        for s in range(plain_end[0], plain_end[1]):
            v = x[feature[s]]
            nan = v != v
            below = (0.0 if nan else v) < threshold[s]
            left[s] = default_left[s] if nan and missing[s] == MISSING_DEFAULT else below
        for s in range(plain_end[1], n_splits):
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
        # every leaf's table row for this row's mask, then the sums column by column
        for leaf in range(n_leaves):
            miss = failed[position[leaf]]
            if miss == 0:
                raw[row, output[leaf]] += value[leaf]
            d = np.int64(depth[leaf])
            mask = ((1 << d) - 1) & ~miss
            address[leaf] = np.int64(table_start[leaf]) + mask * np.int64(stride[leaf])
        for column in range(column_start.shape[0] - 1):
            total = 0.0
            for e in range(column_start[column], column_start[column + 1]):
                total += table[address[entry_leaf[e]] + entry_slot[e]]
            phi[row, column] = total


def _jit(function: Any, **options: Any) -> Any:
    """Compile with numba, cached on disk when a cache directory is writable.

    numba caches next to the source or in the user's cache directory (``NUMBA_CACHE_DIR``);
    where neither is writable (a read-only install without a home), it compiles at start-up
    instead of failing.
    """
    try:
        return numba.njit(cache=True, nogil=True, **options)(function)
    except RuntimeError:
        return numba.njit(nogil=True, **options)(function)


_contains = _jit(_contains, inline="always")
_goes_left = _jit(_goes_left, inline="always")
# reassociation lets the column sums vectorise instead of one long chain of dependent
# additions; no other fast-math flag (NaN and infinity tests must keep their meaning)
_compiled = cast(Callable[..., None], _jit(_explain, fastmath={"reassoc"}))


_WIDE = (
    "feature",
    "category_start",
    "category_end",
    "categories",
    "parent",
    "edge_split",
    "position",
    "table_start",
    "entry_leaf",
    "column_start",
    "output",
)
_NARROW = (
    "kind",
    "missing",
    "default_left",
    "edge_left",
    "edge_slot",
    "depth",
    "stride",
    "entry_slot",
)
_FLOATS = ("threshold", "value")


@dataclass(frozen=True)
class Program:
    """Everything the kernel reads, packed into a few arrays.

    A numba call pays for every argument it unboxes; packing some twenty arrays into three
    (int32, int8, float64) plus offsets saves several microseconds of each explanation.
    """

    wide: npt.NDArray[np.int32]
    wide_at: npt.NDArray[np.int64]
    narrow: npt.NDArray[np.int8]
    narrow_at: npt.NDArray[np.int64]
    floats: Floats
    floats_at: npt.NDArray[np.int64]
    #: splits ``[0, plain_end[0])`` are ``<=`` and ``[plain_end[0], plain_end[1])`` are ``<``
    #: numeric splits whose missing values follow default_left or read as 0
    plain_end: npt.NDArray[np.int64]
    table: Floats
    n_outputs: int
    n_features: int

    @property
    def table_floats(self) -> int:
        return int(self.table.size)


def _pack(arrays: list[npt.NDArray[Any]], dtype: Any) -> tuple[Any, npt.NDArray[np.int64]]:
    sizes = [len(a) for a in arrays]
    at = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return np.concatenate([np.asarray(a, dtype=dtype) for a in arrays]), at


def program(
    splits: Splits, edges: Edges, tables: LeafTables, n_outputs: int, n_features: int
) -> Program:
    """Pack the ensemble's splits, edges and tables for `explain_matrix`."""
    named: dict[str, npt.NDArray[Any]] = {
        "feature": splits.feature,
        "category_start": splits.category_start,
        "category_end": splits.category_end,
        "categories": splits.categories,
        "parent": edges.parent,
        "edge_split": edges.split,
        "position": tables.position,
        "table_start": tables.table_start,
        "entry_leaf": tables.entry_leaf,
        "column_start": tables.column_start,
        "output": tables.output,
        "kind": splits.kind,
        "missing": splits.missing,
        "default_left": splits.default_left,
        "edge_left": edges.left,
        "edge_slot": edges.slot,
        "depth": tables.depth,
        "stride": tables.stride,
        "entry_slot": tables.entry_slot,
        "threshold": splits.threshold,
        "value": tables.value,
    }
    wide, wide_at = _pack([named[n] for n in _WIDE], np.int32)
    narrow, narrow_at = _pack([named[n] for n in _NARROW], np.int8)
    floats, floats_at = _pack([named[n] for n in _FLOATS], np.float64)
    plain = (splits.missing != MISSING_ZERO).astype(bool)
    less_equal = plain & (splits.kind == LESS_EQUAL)
    less = plain & (splits.kind == LESS)
    # `collect` sorts splits by kind, then missing rule (MISSING_ZERO last within a kind)
    n_less_equal, n_less = int(less_equal.sum()), int(less.sum())
    if not (less_equal[:n_less_equal].all() and less[n_less_equal : n_less_equal + n_less].all()):
        raise ValueError("splits are not sorted by kind and missing rule")
    plain_end = np.array([n_less_equal, n_less_equal + n_less], dtype=np.int64)
    return Program(
        wide,
        wide_at,
        narrow,
        narrow_at,
        floats,
        floats_at,
        plain_end,
        tables.table,
        n_outputs,
        n_features,
    )


def explain_matrix(
    matrix: Floats,
    packed: Program,
    *,
    round_to_float32: bool = False,
    tiny_is_zero: bool = False,
) -> tuple[Floats, Floats]:
    """Contributions and raw leaf sums for a model-space matrix.

    Parameters
    ----------
    matrix : ndarray of shape (n, n_features)
        Rows as the model sees them (category codes, NaN for missing).
    packed : Program
    round_to_float32, tiny_is_zero : bool
        Read inputs as XGBoost and scikit-learn do (rounded to float32) or as LightGBM
        does (``|x| <= 1e-35`` is 0).

    Returns
    -------
    phi : ndarray of shape (n, n_outputs, n_features)
    raw : ndarray of shape (n, n_outputs)
        Sum of the reached leaves' values per output (no global offset).
    """
    n = matrix.shape[0]
    phi = np.zeros((n, packed.n_outputs * packed.n_features))
    raw = np.zeros((n, packed.n_outputs))
    _compiled(
        np.ascontiguousarray(matrix, dtype=np.float64),
        round_to_float32,
        tiny_is_zero,
        packed.wide,
        packed.wide_at,
        packed.narrow,
        packed.narrow_at,
        packed.floats,
        packed.floats_at,
        packed.plain_end,
        packed.table,
        phi,
        raw,
    )
    return phi.reshape(n, packed.n_outputs, packed.n_features), raw
