"""The one interface every framework adapter implements.

An adapter wraps a loaded model and answers `predict(frame)`:

- ``frame`` is a `pandas.DataFrame` whose columns are the model's input features, in the
  order of the version's input signature, one row per instance.
- For classifiers the result is a float64 array of shape ``(n_rows, n_classes)`` holding
  class probabilities in the order of `classes`; for regressors a float64 array of shape
  ``(n_rows,)`` holding predicted values.

Batching, timeouts and metrics wrap `predict`; they never live inside an adapter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

Task = Literal["classification", "regression"]
Label = str | int
Predictions = npt.NDArray[np.float64]


class ModelAdapter(ABC):
    """A loaded model behind the common `predict` contract."""

    framework: str
    task: Task
    classes: list[Label]
    feature_names: list[str] | None

    @abstractmethod
    def predict(self, frame: pd.DataFrame) -> Predictions:
        """Class probabilities ``(n, n_classes)`` or values ``(n,)`` for each row of `frame`."""

    def predict_records(
        self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
    ) -> Predictions:
        """`predict` for rows given as mappings (what the request path holds).

        Equal to ``predict(DataFrame(rows)[columns])``. Adapters whose framework takes a
        plain matrix override it to skip building a DataFrame, which costs more than a
        small model call.
        """
        return self.predict(pd.DataFrame({c: [row[c] for row in rows] for c in columns}))


@dataclass(frozen=True)
class LoadOptions:
    """What the user told the registry about an artifact when registering it."""

    trusted_types: list[str] = field(default_factory=list)
    trust_pickle: bool = False
    classes: list[Label] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "trusted_types": list(self.trusted_types),
            "trust_pickle": self.trust_pickle,
            "classes": self.classes,
            "extra": dict(self.extra),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LoadOptions:
        return cls(
            trusted_types=list(data.get("trusted_types", [])),
            trust_pickle=bool(data.get("trust_pickle", False)),
            classes=data.get("classes"),
            extra=dict(data.get("extra", {})),
        )


class ArtifactFormat(ABC):
    """One way of storing a model on disk: how to recognise it and how to load it safely."""

    name: str
    #: distribution names whose versions are recorded with each registered version
    libraries: tuple[str, ...] = ()

    @abstractmethod
    def sniff(self, path: Path) -> bool:
        """True if `path` looks like an artifact of this format (cheap, no full load)."""

    @abstractmethod
    def load(self, path: Path, options: LoadOptions) -> ModelAdapter:
        """Load the artifact; raise `ArtifactError` if it is corrupt or not trusted."""


def as_predictions(values: Any) -> Predictions:
    """Coerce a framework's output to float64 without copying when it already is."""
    return np.asarray(values, dtype=np.float64)


def binary_to_two_columns(positive: Predictions) -> Predictions:
    """Frameworks that return P(class 1) only: expand to ``(n, 2)`` as (P(0), P(1))."""
    positive = positive.reshape(-1)
    return np.column_stack([1.0 - positive, positive])
