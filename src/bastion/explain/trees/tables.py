"""Per-leaf TreeSHAP tables: every leaf's contributions for every pattern of satisfied features.

For a leaf with value ``v`` whose path tests the distinct features ``U`` (``d = |U|``), let
``z_j`` be the product of cover ratios along the path for feature ``j`` and ``o_j`` be 1 when
a row satisfies every condition on ``j`` along the path. Path-dependent TreeSHAP gives
feature ``i`` of ``U`` the share

    v * (o_i - z_i) * sum_{S ⊆ O \\ {i}} |S|! (d - |S| - 1)! / d! * prod_{j ∈ U \\ S \\ {i}} z_j

with ``O = {j : o_j = 1}``. It depends on the row only through the mask ``O``, so it is
tabulated once per leaf as ``table[mask, i]`` (``2**d * d`` floats), FastTreeSHAP-v2 style;
explaining a row is then a gather. The sum over ``S`` is a polynomial in subset size: the
coefficient of ``t**k`` in ``prod_{j ∈ O\\{i}} (z_j + t) * prod_{j ∉ O, j ≠ i} z_j``, built for
all masks and features of a group of equally deep leaves at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np

from bastion.explain.trees.model import Floats, Ints, Leaf

#: leaves with more distinct features than this make the tables too large to precompute
MAX_PATH_FEATURES = 12
#: the tables of one model may hold at most this many floats (256 MiB)
MAX_TABLE_FLOATS = 2**25
#: elements of the working array per vectorised step, bounding start-up memory
_CHUNK_ELEMENTS = 2**22
#: floats per cache line
_LINE = 8


def _stride(depth: int) -> int:
    """Floats per table row: the depth rounded up to a power of two (0 for a leaf-only tree)."""
    return 0 if depth == 0 else 1 << (depth - 1).bit_length()


def _aligned_zeros(n: int) -> Floats:
    """``n`` zeros starting on a 64-byte boundary."""
    raw = np.zeros(n + _LINE, dtype=np.float64)
    skip = (-raw.ctypes.data // 8) % _LINE
    return raw[skip : skip + n]


class TablesTooLarge(Exception):
    """The model's paths are too deep (or too many) for precomputed tables."""


@dataclass(frozen=True)
class LeafTables:
    """Flat arrays the kernel reads, one entry per leaf unless noted.

    ``table[table_start[l] + mask * stride[l] + k]`` is the contribution to leaf ``l``'s
    k-th distinct feature when the features in ``mask`` are satisfied. Output column ``c``
    (``output * n_features + feature``) is the sum over the entries
    ``column_start[c]:column_start[c + 1]``, each naming a leaf (``entry_leaf``) and its
    feature's slot (``entry_slot``): the kernel reads the table column by column into one
    running sum, with no scattered stores.
    """

    position: Ints
    depth: Ints
    stride: Ints
    table_start: Ints
    entry_leaf: Ints
    entry_slot: Ints
    column_start: Ints
    value: Floats
    output: Ints
    table: Floats


def build_tables(leaves: list[Leaf], n_features: int) -> LeafTables:
    """Tabulate every leaf; raise `TablesTooLarge` past the limits above."""
    depths = np.array([len(leaf.features) for leaf in leaves], dtype=np.int64)
    if depths.size and int(depths.max()) > MAX_PATH_FEATURES:
        raise TablesTooLarge(
            f"a leaf path tests {int(depths.max())} distinct features "
            f"(at most {MAX_PATH_FEATURES} are tabulated)"
        )
    # a row of a leaf's table (one mask) is padded to a power of two floats and every table
    # starts on a cache line, so looking a row up touches one line, not two
    strides = np.array([_stride(int(d)) for d in depths], dtype=np.int64)
    sizes = (2**depths) * strides
    padded = -(-sizes // _LINE) * _LINE
    total = int(padded.sum())
    if total > MAX_TABLE_FLOATS:
        raise TablesTooLarge(f"the tables would hold {total} floats")
    table_start = np.concatenate([[0], np.cumsum(padded)[:-1]]).astype(np.int64)
    table = _aligned_zeros(total)
    for depth in np.unique(depths):
        members = np.flatnonzero(depths == depth)
        d = int(depth)
        if d == 0:
            continue
        per_leaf = (2**d) * d * (d + 1)
        step = max(1, _CHUNK_ELEMENTS // per_leaf)
        for begin in range(0, len(members), step):
            chunk = members[begin : begin + step]
            zero = np.array([leaves[i].zero_fractions for i in chunk], dtype=np.float64)
            value = np.array([leaves[i].value for i in chunk], dtype=np.float64)
            block = _leaf_tables(zero, value)
            stride = _stride(d)
            for row, leaf in enumerate(chunk):
                start = int(table_start[leaf])
                rows = table[start : start + (2**d) * stride].reshape(2**d, stride)
                rows[:, :d] = block[row]
    # every (leaf, distinct feature) pair, ordered by the output column it adds to
    columns: list[int] = []
    owners: list[int] = []
    slots: list[int] = []
    for index, leaf in enumerate(leaves):
        columns.extend(leaf.output * n_features + f for f in leaf.features)
        owners.extend([index] * len(leaf.features))
        slots.extend(range(len(leaf.features)))
    column = np.asarray(columns, dtype=np.int64)
    order = np.argsort(column, kind="stable")
    n_columns = (int(max((leaf.output for leaf in leaves), default=0)) + 1) * n_features
    column_start = np.searchsorted(column[order], np.arange(n_columns + 1))
    return LeafTables(
        position=np.array([leaf.position for leaf in leaves], dtype=np.int32),
        depth=depths.astype(np.int8),
        stride=strides.astype(np.int8),
        # at most MAX_TABLE_FLOATS, so int32 offsets suffice
        table_start=table_start.astype(np.int32),
        entry_leaf=np.asarray(owners, dtype=np.int32)[order],
        entry_slot=np.asarray(slots, dtype=np.int8)[order],
        column_start=column_start.astype(np.int32),
        value=np.array([leaf.value for leaf in leaves], dtype=np.float64),
        output=np.array([leaf.output for leaf in leaves], dtype=np.int32),
        table=table,
    )


def _leaf_tables(zero: Floats, value: Floats) -> Floats:
    """Tables of ``m`` leaves with ``d`` distinct features each.

    Parameters
    ----------
    zero : ndarray of shape (m, d)
        Zero fractions per leaf and feature.
    value : ndarray of shape (m,)

    Returns
    -------
    ndarray of shape (m, 2**d, d)
        ``[leaf, mask, i]``: feature ``i``'s contribution when the features in ``mask``
        are satisfied.
    """
    m, d = zero.shape
    masks = np.arange(2**d)
    ones = ((masks[:, None] >> np.arange(d)[None, :]) & 1).astype(np.float64)  # (2**d, d)
    # poly[leaf, mask, i, k]: coefficient of t**k of the product over features j != i
    poly = np.zeros((m, 2**d, d, d + 1))
    poly[..., 0] = 1.0
    same = np.eye(d, dtype=bool)
    for j in range(d):
        z = zero[:, j][:, None, None, None]
        grown = poly * z
        # a satisfied feature j may be in S (factor 1, degree + 1) or not (factor z_j)
        chosen = (ones[:, j][None, :, None, None] > 0) & ~same[j][None, None, :, None]
        grown[..., 1:] += np.where(chosen, poly[..., :-1], 0.0)
        poly = np.where(same[j][None, None, :, None], poly, grown)
    weights = np.array(
        [factorial(k) * factorial(d - k - 1) / factorial(d) for k in range(d)] + [0.0]
    )
    total = poly @ weights  # (m, 2**d, d)
    return np.asarray(value[:, None, None] * (ones[None, :, :] - zero[:, None, :]) * total)
