"""A uniform sample of rows of bounded size, filled chunk by chunk (bottom-k sampling).

Each row gets a random key; the sample is the rows with the `capacity` smallest keys seen
so far. That is a uniform sample without replacement of every row added, whatever the
chunk sizes, and it keeps whole rows (all columns of one row together), so two columns
sampled together stay paired — scores with their labels, features with each other.

>>> reservoir = Reservoir(2, seed=0)
>>> reservoir.add({"x": np.array([1.0, 2.0, 3.0])})
>>> reservoir.seen, reservoir.columns()["x"].size
(3, 2)
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from bastion.monitor.stats import FloatArray


class Reservoir:
    """At most `capacity` rows of float columns, a uniform sample of all rows added."""

    def __init__(self, capacity: int, *, seed: int = 0) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be ≥ 1, got {capacity}")
        self.capacity = capacity
        self.seen = 0
        self._rng = np.random.default_rng(seed)
        self._keys: FloatArray = np.empty(0)
        self._columns: dict[str, FloatArray] = {}

    @property
    def exact(self) -> bool:
        """True while every row added is kept."""
        return self.seen <= self.capacity

    def add(self, columns: Mapping[str, FloatArray]) -> None:
        """Add one chunk of rows (every column the same length, the same names each time)."""
        size = len(next(iter(columns.values()))) if columns else 0
        if size == 0:
            return
        self.seen += size
        keys = np.concatenate([self._keys, self._rng.random(size)])
        merged = {
            name: np.concatenate([self._columns.get(name, np.empty(0)), np.asarray(values)])
            for name, values in columns.items()
        }
        if keys.size > self.capacity:
            keep = np.argpartition(keys, self.capacity - 1)[: self.capacity]
            keep.sort()  # keeps rows in the order they were added
            keys = keys[keep]
            merged = {name: values[keep] for name, values in merged.items()}
        self._keys, self._columns = keys, merged

    def columns(self) -> dict[str, FloatArray]:
        return dict(self._columns)
