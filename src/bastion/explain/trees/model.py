"""A framework-neutral form of a tree ensemble: what each split tests and how rows reach leaves.

Parsers fill one `Tree` per native tree; `compile_ensemble` flattens them into the arrays
the kernel reads. Split semantics are stated per node, because LightGBM, XGBoost and
scikit-learn disagree on ``<`` vs ``<=``, on missing values and on categorical sets.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

#: left when x <= threshold (LightGBM numeric, scikit-learn)
LESS_EQUAL = 0
#: left when x < threshold (XGBoost numeric)
LESS = 1
#: left when int(x) is in the node's set; NaN and negatives go right (LightGBM categorical)
CATEGORY_LEFT = 2
#: right when int(x) is in the node's set; NaN follows default_left (XGBoost categorical)
CATEGORY_RIGHT = 3

#: NaN follows default_left
MISSING_DEFAULT = 0
#: NaN is compared as 0.0 (LightGBM missing_type None)
MISSING_AS_ZERO = 1
#: NaN and zero follow default_left (LightGBM missing_type Zero)
MISSING_ZERO = 2

#: index and code arrays; the kernel reads them for every row, so they are kept narrow
#: (int32 indices, int8 flags) to stay in cache
Ints = npt.NDArray[np.signedinteger[Any]]
Floats = npt.NDArray[np.float64]


@dataclass
class Tree:
    """One tree in node-list form; node 0 is the root, ``left[i] == -1`` marks a leaf.

    ``cover`` is what path-dependent TreeSHAP weighs by: data counts in LightGBM, hessian
    sums in XGBoost, weighted sample counts in scikit-learn. ``output`` is the model output
    (class) the tree adds to.
    """

    output: int = 0
    left: list[int] = field(default_factory=list)
    right: list[int] = field(default_factory=list)
    feature: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    default_left: list[bool] = field(default_factory=list)
    categories: list[tuple[int, ...]] = field(default_factory=list)
    cover: list[float] = field(default_factory=list)
    value: list[float] = field(default_factory=list)

    def add(
        self,
        *,
        cover: float,
        value: float = 0.0,
        feature: int = -1,
        threshold: float = 0.0,
        kind: int = LESS_EQUAL,
        missing: int = MISSING_DEFAULT,
        default_left: bool = False,
        categories: tuple[int, ...] = (),
    ) -> int:
        """Append a node (children are linked with `link`); return its index."""
        self.left.append(-1)
        self.right.append(-1)
        self.feature.append(feature)
        self.threshold.append(threshold)
        self.kind.append(kind)
        self.missing.append(missing)
        self.default_left.append(default_left)
        self.categories.append(categories)
        self.cover.append(cover)
        self.value.append(value)
        return len(self.left) - 1

    def link(self, node: int, left: int, right: int) -> None:
        self.left[node] = left
        self.right[node] = right


@dataclass(frozen=True)
class Leaf:
    """One leaf seen from the root, its split conditions merged per feature."""

    value: float
    output: int
    #: the leaf's position in the ensemble's preorder numbering of all nodes
    position: int
    #: the distinct features on the path, in order of first use
    features: list[int]
    #: per distinct feature: product of cover(child) / cover(parent) along the path
    zero_fractions: list[float]


@dataclass(frozen=True)
class Splits:
    """Every split of the ensemble, numbered globally, as flat arrays for the kernel."""

    feature: Ints
    threshold: Floats
    kind: Ints
    missing: Ints
    default_left: Ints
    category_start: Ints
    category_end: Ints
    categories: Ints


@dataclass(frozen=True)
class Edges:
    """Every node of the ensemble in preorder, with the edge that leads to it.

    A leaf's features are numbered (slots) by first use from the root, so the slot a split
    tests is the same for every leaf below it: the set of failed slots of a node is its
    parent's plus, if the row went the other way at the parent, the parent's slot. The
    kernel computes it once per node instead of once per leaf and path step.
    """

    #: position of the parent, -1 for a root
    parent: Ints
    #: global split number of the parent
    split: Ints
    #: 1 when the node is its parent's left child
    left: Ints
    #: slot of the parent's feature among the distinct features on the path
    slot: Ints


@dataclass
class _Builder:
    feature: list[int] = field(default_factory=list)
    threshold: list[float] = field(default_factory=list)
    kind: list[int] = field(default_factory=list)
    missing: list[int] = field(default_factory=list)
    default_left: list[int] = field(default_factory=list)
    starts: list[int] = field(default_factory=list)
    ends: list[int] = field(default_factory=list)
    categories: list[int] = field(default_factory=list)
    parent: list[int] = field(default_factory=list)
    split: list[int] = field(default_factory=list)
    left: list[int] = field(default_factory=list)
    slot: list[int] = field(default_factory=list)

    def add_split(self, tree: Tree, node: int) -> int:
        self.feature.append(tree.feature[node])
        self.threshold.append(tree.threshold[node])
        self.kind.append(tree.kind[node])
        self.missing.append(tree.missing[node])
        self.default_left.append(int(tree.default_left[node]))
        self.starts.append(len(self.categories))
        self.categories.extend(sorted(tree.categories[node]))
        self.ends.append(len(self.categories))
        return len(self.feature) - 1

    def add_position(self, parent: int, split: int, left: bool, slot: int) -> int:
        self.parent.append(parent)
        self.split.append(split)
        self.left.append(int(left))
        self.slot.append(slot)
        return len(self.parent) - 1


def _ints(values: list[int]) -> Ints:
    return np.asarray(values, dtype=np.int64)


def collect(trees: list[Tree]) -> tuple[Splits, Edges, list[Leaf], Floats]:
    """Number all splits and nodes, list every leaf, and the expected output per class.

    Returns the splits, the edges, the leaves, and ``expected`` of shape ``(n_outputs,)``:
    the cover-weighted mean leaf value summed over trees (without any global offset).
    """
    built = _Builder()
    leaves: list[Leaf] = []
    n_outputs = max((tree.output for tree in trees), default=0) + 1
    expected = np.zeros(n_outputs)
    for tree in trees:
        root_cover = tree.cover[0]
        # (node, its position, the parent's position, distinct features, zero fractions)
        root = built.add_position(-1, -1, False, 0)
        stack: list[tuple[int, int, list[int], list[float]]] = [(0, root, [], [])]
        while stack:
            node, position, features, zero = stack.pop()
            if tree.left[node] < 0:
                leaves.append(Leaf(tree.value[node], tree.output, position, features, zero))
                share = tree.cover[node] / root_cover if root_cover > 0 else 0.0
                expected[tree.output] += tree.value[node] * share
                continue
            split = built.add_split(tree, node)
            f = tree.feature[node]
            known = f in features
            slot = features.index(f) if known else len(features)
            for child, went_left in ((tree.right[node], False), (tree.left[node], True)):
                ratio = tree.cover[child] / tree.cover[node] if tree.cover[node] > 0 else 0.0
                child_zero = list(zero) if known else [*zero, 1.0]
                child_zero[slot] *= ratio
                child_features = features if known else [*features, f]
                at = built.add_position(position, split, went_left, slot)
                stack.append((child, at, child_features, child_zero))
    # Splits of one kind and missing-value rule next to each other, and leaves of one
    # depth: the kernel's branches on them then go the same way for long runs.
    order = np.lexsort((_ints(built.feature), _ints(built.missing), _ints(built.kind)))
    number = np.empty_like(order)
    number[order] = np.arange(len(order))
    splits = Splits(
        feature=_ints(built.feature)[order].astype(np.int32),
        threshold=np.asarray(built.threshold, dtype=np.float64)[order],
        kind=_ints(built.kind)[order].astype(np.int8),
        missing=_ints(built.missing)[order].astype(np.int8),
        default_left=_ints(built.default_left)[order].astype(np.int8),
        category_start=_ints(built.starts)[order].astype(np.int32),
        category_end=_ints(built.ends)[order].astype(np.int32),
        categories=_ints(built.categories).astype(np.int32),
    )
    parent_split = _ints(built.split)
    parent_split = np.where(parent_split >= 0, number[np.maximum(parent_split, 0)], -1)
    edges = Edges(
        _ints(built.parent).astype(np.int32),
        parent_split.astype(np.int32),
        _ints(built.left).astype(np.int8),
        _ints(built.slot).astype(np.int8),
    )
    leaves.sort(key=lambda leaf: len(leaf.features))
    return splits, edges, leaves, expected
