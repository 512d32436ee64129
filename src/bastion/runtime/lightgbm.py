"""LightGBM boosters saved as model text (`Booster.save_model`)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bastion.errors import ArtifactError
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

_CLASSIFICATION_OBJECTIVES = ("binary", "multiclass", "multiclassova", "cross_entropy")


class LightGBMAdapter(ModelAdapter):
    framework = "lightgbm"

    def __init__(self, booster: Any, classes: list[Label] | None) -> None:
        self.booster = booster
        self._names: list[str] = list(booster.feature_name())
        self.feature_names = self._names
        # The first iteration is enough for the header fields; dumping every tree is slow.
        dump = booster.dump_model(num_iteration=1)
        objective = str(dump.get("objective", "regression"))
        self.task: Task = (
            "classification" if objective.startswith(_CLASSIFICATION_OBJECTIVES) else "regression"
        )
        self._binary = objective.startswith(("binary", "cross_entropy"))
        n_classes = 2 if self._binary else booster.num_model_per_iteration()
        if self.task == "classification":
            self.classes = list(classes) if classes is not None else list(range(n_classes))
            if len(self.classes) != n_classes:
                raise ArtifactError(
                    f"classes lists {len(self.classes)} labels but the model has {n_classes}"
                )
        else:
            self.classes = []
        # Categorical columns were encoded by pandas category codes at training time;
        # LightGBM keeps those category lists in the model file.
        categories: list[list[Any]] = getattr(booster, "pandas_categorical", None) or []
        categorical_index = _categorical_feature_indexes(dump)
        if categories and len(categories) != len(categorical_index):
            raise ArtifactError(
                f"the model has {len(categorical_index)} categorical features but "
                f"{len(categories)} pandas category lists; cannot tell which column is which"
            )
        self._codes: dict[str, dict[Any, int]] = {}
        for index, values in zip(categorical_index, categories, strict=False):
            name = self._names[index]
            self._codes[name] = {value: code for code, value in enumerate(values)}

    def predict(self, frame: pd.DataFrame) -> Predictions:
        matrix = np.empty((len(frame), len(self._names)), dtype=np.float64)
        for index, name in enumerate(self._names):
            column = frame[name]
            codes = self._codes.get(name)
            if codes is not None:
                # Unseen categories become NaN, which LightGBM routes like a missing value.
                matrix[:, index] = [codes.get(value, np.nan) for value in column]
            elif column.dtype.kind in "fiub":
                matrix[:, index] = column.to_numpy()
            else:
                matrix[:, index] = pd.to_numeric(column, errors="coerce")
        return self._predict_matrix(matrix)

    def predict_records(
        self, rows: Sequence[Mapping[str, Any]], columns: Sequence[str]
    ) -> Predictions:
        matrix = np.empty((len(rows), len(self._names)), dtype=np.float64)
        for index, name in enumerate(self._names):
            codes = self._codes.get(name)
            if codes is not None:
                matrix[:, index] = [codes.get(row[name], np.nan) for row in rows]
            else:
                # None becomes NaN, LightGBM's missing value.
                matrix[:, index] = np.array([row[name] for row in rows], dtype=np.float64)
        return self._predict_matrix(matrix)

    def _predict_matrix(self, matrix: npt.NDArray[np.float64]) -> Predictions:
        raw = self.booster.predict(matrix, num_threads=1)
        values = as_predictions(raw)
        if self.task == "classification" and self._binary:
            return binary_to_two_columns(values)
        return values


def _categorical_feature_indexes(dump: dict[str, Any]) -> list[int]:
    """Numeric features list ``values: []`` in the dump; categorical ones list their codes."""
    info = dump.get("feature_infos", {})
    names = dump.get("feature_names", [])
    return [i for i, name in enumerate(names) if info.get(name, {}).get("values")]


_TREE_SIZES = re.compile(rb"^tree_sizes=([0-9 ]*)\n", re.MULTILINE)
_END_OF_PARAMETERS = b"\nend of parameters\n"


def checked_model_text(data: bytes) -> str:
    """The model text, made safe to hand to LightGBM, or the reason it is not a whole model.

    LightGBM's parser trusts the ``tree_sizes`` header: on a truncated or spliced file it
    reads past the end of the buffer or aborts the whole process from a parallel loop. So
    the tree section is checked against those sizes here, and the header is then removed,
    which makes LightGBM parse trees one by one and raise ordinary errors instead.
    """
    if not data.startswith(b"tree\nversion="):
        raise ValueError("it does not start with a LightGBM model header")
    first_tree = data.find(b"\nTree=")
    header = data[: first_tree if first_tree >= 0 else len(data)]
    sizes_line = _TREE_SIZES.search(header)
    if first_tree < 0 or sizes_line is None:
        raise ValueError("it has no tree section or no tree_sizes header (truncated?)")
    position = first_tree + 1
    for index, size in enumerate(int(size) for size in sizes_line.group(1).split()):
        block = data[position : position + size]
        if len(block) != size or not block.startswith(b"Tree=%d\n" % index):
            raise ValueError(f"tree {index} is cut short or does not match tree_sizes")
        position += size
    if not data.startswith(b"end of trees\n", position):
        raise ValueError("the tree section does not end where tree_sizes says (truncated?)")
    # LightGBM always writes its parameters after the trees, and the Python package then
    # appends the pandas category lists; without them categories would be silently misread.
    end = data.find(_END_OF_PARAMETERS, position)
    if end < 0:
        raise ValueError("its parameters section is missing or cut short (truncated?)")
    tail = data[end + len(_END_OF_PARAMETERS) :].strip()
    if tail and not tail.startswith(b"pandas_categorical:"):
        raise ValueError("it ends in an unexpected or cut short line after its parameters")
    return (data[: sizes_line.start()] + data[sizes_line.end() :]).decode("utf-8")


class LightGBMFormat(ArtifactFormat):
    name = "lightgbm"
    libraries = ("lightgbm",)

    def sniff(self, path: Path) -> bool:
        if not path.is_file():
            return False
        with path.open("rb") as handle:
            head = handle.read(64)
        return head.startswith(b"tree\nversion=")

    def load(self, path: Path, options: LoadOptions) -> ModelAdapter:
        import lightgbm

        try:
            text = checked_model_text(path.read_bytes())
            booster = lightgbm.Booster(model_str=text)
        except (lightgbm.basic.LightGBMError, ValueError) as exc:  # incl. bad UTF-8 and JSON
            raise ArtifactError(f"{path.name} is not a loadable LightGBM model: {exc}") from exc
        return LightGBMAdapter(booster, options.classes)
