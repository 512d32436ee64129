"""Profiles: everything drift needs about a data set, small, serialisable and mergeable.

A reference profile is computed once from the reference data (bin edges from its
quantiles, its vocabulary for text). A window profile is computed against that reference
from any batch of decisions; two windows' profiles merge into the profile of their union,
so replicas and hours can be combined without ever holding the raw rows in one place.

>>> import pandas as pd
>>> schema = Schema({"income": "numeric", "channel": "categorical"})
>>> frame = pd.DataFrame({"income": [1.0, 2.0, 3.0], "channel": ["web", "web", "shop"]})
>>> reference = profile_frame(frame, schema)
>>> window = profile_frame(frame.head(2), schema, reference).merge(
...     profile_frame(frame.tail(1), schema, reference))
>>> window.rows
3
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from bastion.monitor.sketches import (
    CategoricalSketch,
    NumericSketch,
    sketch_categorical,
    sketch_numeric,
)
from bastion.monitor.text import build_vocabulary, cross_fitted_oov, describe

if TYPE_CHECKING:  # the registry package pulls in the database layer; profiles need not
    from bastion.registry.signature import InputSignature

FeatureKind = Literal["numeric", "categorical", "text"]
#: the numeric descriptors of a text column, in report order
TEXT_DESCRIPTORS = ("length", "oov_rate", "non_ascii")
#: the format version written by :meth:`Profile.to_dict`
FORMAT = 1


@dataclass(frozen=True)
class Schema:
    """Which columns to profile and how: feature kinds, plus the prediction column."""

    features: Mapping[str, FeatureKind]
    prediction: str | None = None

    @classmethod
    def from_signature(cls, signature: InputSignature, prediction: str | None = None) -> Schema:
        """Kinds from a model's input signature; boolean columns are categorical."""
        kinds: dict[str, FeatureKind] = {}
        for column in signature.columns:
            kinds[column.name] = "categorical" if column.kind == "boolean" else column.kind
        return cls(kinds, prediction)


@dataclass(frozen=True)
class TextSketch:
    """Descriptor sketches of a text column against the reference vocabulary.

    Only the reference keeps the vocabulary itself (up to 20,000 tokens); windows keep its
    fingerprint, so stored windows stay small and two windows merge only when they were
    measured against the same vocabulary.
    """

    fingerprint: str
    descriptors: dict[str, NumericSketch]
    script: CategoricalSketch
    vocabulary: frozenset[str] | None = None

    @property
    def rows(self) -> int:
        return self.descriptors["length"].rows

    def merge(self, other: TextSketch) -> TextSketch:
        if self.fingerprint != other.fingerprint:
            raise ValueError("text sketches built against different vocabularies cannot be merged")
        return TextSketch(
            fingerprint=self.fingerprint,
            descriptors={k: v.merge(other.descriptors[k]) for k, v in self.descriptors.items()},
            script=self.script.merge(other.script),
            vocabulary=self.vocabulary,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "text",
            "fingerprint": self.fingerprint,
            "vocabulary": None if self.vocabulary is None else sorted(self.vocabulary),
            "descriptors": {k: v.to_dict() for k, v in self.descriptors.items()},
            "script": self.script.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TextSketch:
        vocabulary = data.get("vocabulary")
        return cls(
            fingerprint=str(data["fingerprint"]),
            descriptors={k: NumericSketch.from_dict(v) for k, v in data["descriptors"].items()},
            script=CategoricalSketch.from_dict(data["script"]),
            vocabulary=None if vocabulary is None else frozenset(str(t) for t in vocabulary),
        )


def fingerprint(vocabulary: frozenset[str]) -> str:
    """A short stable digest of a vocabulary (order-independent)."""
    digest = hashlib.sha256("\n".join(sorted(vocabulary)).encode("utf-8"))
    return digest.hexdigest()[:16]


Sketch = NumericSketch | CategoricalSketch | TextSketch


@dataclass(frozen=True)
class Profile:
    """Per-feature sketches of one data set (a reference or a window) and its predictions."""

    rows: int
    features: dict[str, Sketch]
    prediction: NumericSketch | None = None
    prediction_name: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def merge(self, other: Profile) -> Profile:
        """The profile of the union of both data sets (both built against one reference)."""
        if self.features.keys() != other.features.keys():
            raise ValueError("profiles with different features cannot be merged")
        merged: dict[str, Sketch] = {}
        for name, sketch in self.features.items():
            merged[name] = _merge(name, sketch, other.features[name])
        prediction = self.prediction
        if self.prediction is not None and other.prediction is not None:
            prediction = self.prediction.merge(other.prediction)
        elif self.prediction is not None or other.prediction is not None:
            raise ValueError("only one of the profiles has predictions")
        return Profile(
            self.rows + other.rows, merged, prediction, self.prediction_name, dict(self.metadata)
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (no NaN or infinity anywhere)."""
        return {
            "format": FORMAT,
            "rows": self.rows,
            "features": {name: sketch.to_dict() for name, sketch in self.features.items()},
            "prediction": None if self.prediction is None else self.prediction.to_dict(),
            "prediction_name": self.prediction_name,
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Profile:
        if data.get("format") != FORMAT:
            raise ValueError(f"profile format must be {FORMAT}, got {data.get('format')!r}")
        readers: dict[str, Callable[[dict[str, Any]], Sketch]] = {
            "numeric": NumericSketch.from_dict,
            "categorical": CategoricalSketch.from_dict,
            "text": TextSketch.from_dict,
        }
        features: dict[str, Sketch] = {}
        for name, sketch in data["features"].items():
            kind = sketch.get("kind")
            if kind not in readers:
                raise ValueError(f"feature {name!r} has unknown kind {kind!r}")
            features[name] = readers[kind](sketch)
        prediction = data.get("prediction")
        return cls(
            rows=int(data["rows"]),
            features=features,
            prediction=None if prediction is None else NumericSketch.from_dict(prediction),
            prediction_name=data.get("prediction_name"),
            metadata=dict(data.get("metadata", {})),
        )


def _merge(name: str, a: Sketch, b: Sketch) -> Sketch:
    if isinstance(a, NumericSketch) and isinstance(b, NumericSketch):
        return a.merge(b)
    if isinstance(a, CategoricalSketch) and isinstance(b, CategoricalSketch):
        return a.merge(b)
    if isinstance(a, TextSketch) and isinstance(b, TextSketch):
        return a.merge(b)
    raise ValueError(f"feature {name!r} has different kinds in the two profiles")


def profile_frame(
    frame: pd.DataFrame, schema: Schema, reference: Profile | None = None, *, bins: int = 10
) -> Profile:
    """Profile `frame`: as a reference when `reference` is None, else as a window of it.

    Parameters
    ----------
    frame : DataFrame with every column named in `schema` (n rows)
    schema : the features and their kinds, and the prediction column if any
    reference : the reference profile whose bin edges and vocabulary a window uses
    bins : equal-frequency bins per numeric feature in a reference profile
    """
    missing = [
        c for c in [*schema.features, schema.prediction] if c is not None and c not in frame.columns
    ]
    if missing:
        raise ValueError(f"frame has no column(s) {', '.join(map(repr, missing))}")
    features: dict[str, Sketch] = {}
    for name, kind in schema.features.items():
        base = None if reference is None else reference.features.get(name)
        features[name] = _sketch(frame[name], kind, base, bins)
    prediction = None
    if schema.prediction is not None:
        edges = (
            None
            if reference is None or reference.prediction is None
            else reference.prediction.edges
        )
        prediction = sketch_numeric(_floats(frame[schema.prediction]), edges, bins=bins)
    return Profile(len(frame), features, prediction, schema.prediction)


def profile_batches(
    batches: Iterable[pd.DataFrame], schema: Schema, reference: Profile, *, bins: int = 10
) -> Profile:
    """Profile a window batch by batch, so its raw rows are never all in memory at once."""
    total: Profile | None = None
    for batch in batches:
        part = profile_frame(batch, schema, reference, bins=bins)
        total = part if total is None else total.merge(part)
    if total is None:
        return profile_frame(
            pd.DataFrame({c: [] for c in _columns(schema)}), schema, reference, bins=bins
        )
    return total


def _columns(schema: Schema) -> list[str]:
    return [*schema.features, *([schema.prediction] if schema.prediction else [])]


def _sketch(column: pd.Series[Any], kind: FeatureKind, base: Sketch | None, bins: int) -> Sketch:
    if kind == "numeric":
        edges = base.edges if isinstance(base, NumericSketch) else None
        return sketch_numeric(_floats(column), edges, bins=bins)
    if kind == "categorical":
        keep = frozenset(base.counts) if isinstance(base, CategoricalSketch) else frozenset()
        return sketch_categorical(column, keep)
    texts = column.tolist()
    if isinstance(base, TextSketch):
        if base.vocabulary is None:
            raise ValueError(
                f"text feature {column.name!r}: the reference profile has no vocabulary"
            )
        vocabulary = base.vocabulary
    else:
        vocabulary = build_vocabulary(t for t in texts if isinstance(t, str))
    described = describe(texts, vocabulary)
    is_reference = not isinstance(base, TextSketch)
    if is_reference:
        described = replace(described, oov_rate=cross_fitted_oov(texts))
    descriptors: dict[str, NumericSketch] = {}
    for descriptor in TEXT_DESCRIPTORS:
        edges = base.descriptors[descriptor].edges if isinstance(base, TextSketch) else None
        descriptors[descriptor] = sketch_numeric(getattr(described, descriptor), edges, bins=bins)
    keep = frozenset(base.script.counts) if isinstance(base, TextSketch) else frozenset()
    script = sketch_categorical(pd.Series(described.script, dtype=object), keep)
    return TextSketch(
        fingerprint(vocabulary), descriptors, script, vocabulary if is_reference else None
    )


def _floats(column: pd.Series[Any]) -> np.ndarray[Any, np.dtype[np.float64]]:
    """A numeric column as float64 with missing values as NaN (nullable dtypes included)."""
    try:
        return np.asarray(
            pd.to_numeric(column, errors="raise").to_numpy(dtype=np.float64, na_value=np.nan)
        )
    except (TypeError, ValueError) as exc:
        raise ValueError(
            f"column {column.name!r} is declared numeric but holds {column.dtype} values"
        ) from exc
