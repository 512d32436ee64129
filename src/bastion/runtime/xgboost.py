"""XGBoost boosters saved as JSON or UBJSON (`Booster.save_model`).

xgboost is an optional extra, imported only when a model of this format is loaded.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bastion.errors import ArtifactError, ModelFailure
from bastion.runtime.adapter import (
    ArtifactFormat,
    Label,
    LoadOptions,
    ModelAdapter,
    Predictions,
    Task,
    as_predictions,
    binary_to_two_columns,
)

#: A JSON model is an object whose first key is "learner" (optionally after "version").
_JSON_HEAD = re.compile(rb'^\s*\{\s*(?:"version"\s*:\s*\[[^\]]*\]\s*,\s*)?"learner"\s*:')
#: Objectives whose output is not a probability or a value a caller can use as one.
_UNSUPPORTED_PREFIXES = ("binary:", "multi:")


def _xgboost_message(exc: Exception) -> str:
    """XGBoost errors carry a timestamp, source location and native stack trace: keep the gist."""
    text = str(exc).split("Stack trace:", 1)[0].strip()
    return re.sub(r"^\[[\d:]+\] [^:]+:\d+: ", "", text)


class XGBoostAdapter(ModelAdapter):
    framework = "xgboost"

    def __init__(self, booster: Any, classes: list[Label] | None) -> None:
        self.booster = booster
        config = json.loads(booster.save_config())
        learner = config["learner"]
        objective = str(learner["learner_train_param"]["objective"])
        self.objective = objective
        names = booster.feature_names
        self.feature_names = list(names) if names is not None else None
        types = booster.feature_types or []
        self._categorical = frozenset(
            name for name, kind in zip(self.feature_names or [], types, strict=False) if kind == "c"
        )
        self.task: Task
        if objective in ("binary:logistic", "multi:softprob"):
            self.task = "classification"
            n_classes = (
                2
                if objective == "binary:logistic"
                else int(learner["learner_model_param"]["num_class"])
            )
            self.classes = list(classes) if classes is not None else list(range(n_classes))
            if len(self.classes) != n_classes:
                raise ArtifactError(
                    f"classes lists {len(self.classes)} labels but the model has {n_classes}"
                )
        elif objective.startswith(_UNSUPPORTED_PREFIXES):
            raise ArtifactError(
                f"XGBoost objective {objective!r} does not output probabilities; "
                "train with binary:logistic or multi:softprob"
            )
        else:
            targets = int(learner["learner_model_param"].get("num_target", "1"))
            if targets != 1:
                raise ArtifactError(
                    f"the model predicts {targets} targets per row; only one is supported"
                )
            self.task = "regression"
            self.classes = []

    def predict(self, frame: pd.DataFrame) -> Predictions:
        import xgboost

        data = frame if self.feature_names is None else frame[self.feature_names]
        columns: dict[str, Any] = {}
        for name in data.columns:
            column = data[name]
            if name in self._categorical:
                # XGBoost re-codes categories by value against those stored in the model.
                columns[str(name)] = column.astype("category")
            else:
                columns[str(name)] = pd.to_numeric(column, errors="coerce").astype(np.float64)
        prepared = pd.DataFrame(columns, index=data.index)
        try:
            matrix = xgboost.DMatrix(prepared, enable_categorical=bool(self._categorical))
            raw = self.booster.predict(matrix)
        except xgboost.core.XGBoostError as exc:
            raise ModelFailure(f"XGBoost could not predict: {_xgboost_message(exc)}") from exc
        values = as_predictions(raw)
        if self.objective == "binary:logistic":
            return binary_to_two_columns(values)
        if self.task == "regression":
            return values.reshape(-1)
        return values.reshape(len(frame), -1)


class XGBoostFormat(ArtifactFormat):
    name = "xgboost"
    libraries = ("xgboost",)

    def sniff(self, path: Path) -> bool:
        if not path.is_file():
            return False
        if path.suffix == ".ubj":
            return True
        if path.suffix != ".json":
            return False
        with path.open("rb") as handle:
            head = handle.read(512)
        return _JSON_HEAD.match(head) is not None

    def load(self, path: Path, options: LoadOptions) -> ModelAdapter:
        try:
            import xgboost
        except ImportError as exc:
            raise ArtifactError(
                f"{path.name} is an XGBoost model but xgboost is not installed: "
                "pip install 'bastion[xgboost]'"
            ) from exc

        try:
            booster = xgboost.Booster(model_file=str(path))
            booster.set_param({"nthread": 1})
        except xgboost.core.XGBoostError as exc:
            raise ArtifactError(
                f"{path.name} is not a loadable XGBoost model: {_xgboost_message(exc)}"
            ) from exc
        return XGBoostAdapter(booster, options.classes)
