"""Tiny models of every artifact format, each with what its own library predicts.

Shared by the adapter contract suite and the end-to-end serving tests, so "identical to
calling the model directly" is checked against one set of models.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import lightgbm
import numpy as np
import numpy.typing as npt
import onnxruntime
import pandas as pd
import skops.io
import xgboost
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from bastion.runtime import get_format
from bastion.runtime.adapter import Label, LoadOptions, ModelAdapter, Task
from bastion.runtime.callable import resolve_target
from tests.runtime import callable_model

FEATURES = ["f0", "f1", "f2", "f3"]
Array = npt.NDArray[np.float64]


# ---------------------------------------------------------------------------------------
# Generated data and the cases built from it


def numeric_frame(rows: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.normal(size=(rows, len(FEATURES))), columns=FEATURES)


def signal(frame: pd.DataFrame) -> pd.Series:
    return frame["f0"] + 0.5 * frame["f1"] - 0.25 * frame["f2"]


def binary_target(frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    return np.asarray(signal(frame) > 0, dtype=np.int64)


def multiclass_target(frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    return np.asarray(np.digitize(signal(frame), [-0.5, 0.5]), dtype=np.int64)


def regression_target(frame: pd.DataFrame) -> Array:
    return signal(frame).to_numpy(dtype=np.float64) * 3.0 + 1.0


def mixed_frame(rows: int = 200, seed: int = 1) -> pd.DataFrame:
    """Numeric, integer and categorical columns, for formats that understand categories."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "f0": rng.normal(size=rows),
            "n": rng.integers(0, 5, size=rows),
            "color": pd.Categorical(rng.choice(["red", "green", "blue"], size=rows)),
        }
    )


def mixed_target(frame: pd.DataFrame) -> npt.NDArray[np.int64]:
    red = (frame["color"] == "red").to_numpy(dtype=np.float64)
    score = frame["f0"].to_numpy() + 1.5 * red - 0.2 * frame["n"].to_numpy()
    return np.asarray(score > 0, dtype=np.int64)


@dataclass
class Case:
    """A saved model plus what its own library predicts for `frame`."""

    format_name: str
    path: Path
    frame: pd.DataFrame
    expected: Array
    task: Task
    classes: list[Label]
    feature_names: list[str] | None
    options: LoadOptions = field(default_factory=LoadOptions)
    rtol: float = 1e-6

    def load(self) -> ModelAdapter:
        return get_format(self.format_name).load(self.path, self.options)


BUILDERS: dict[str, Callable[[Path], Case]] = {}


def builder(case_id: str) -> Callable[[Callable[[Path], Case]], Callable[[Path], Case]]:
    def register(build: Callable[[Path], Case]) -> Callable[[Path], Case]:
        BUILDERS[case_id] = build
        return build

    return register


def two_columns(positive: Any) -> Array:
    positive = np.asarray(positive, dtype=np.float64).reshape(-1)
    return np.column_stack([1.0 - positive, positive])


# scikit-learn through skops ----------------------------------------------------------


@builder("sklearn-binary")
def sklearn_binary(tmp: Path) -> Case:
    frame = numeric_frame()
    labels = np.where(binary_target(frame) == 1, "yes", "no")
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, labels)
    skops.io.dump(model, tmp / "model.skops")
    return Case(
        format_name="sklearn",
        path=tmp / "model.skops",
        frame=frame,
        expected=model.predict_proba(frame),
        task="classification",
        classes=["no", "yes"],
        feature_names=FEATURES,
    )


@builder("sklearn-multiclass-trusted-tree")
def sklearn_multiclass(tmp: Path) -> Case:
    frame = numeric_frame()
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(frame, multiclass_target(frame))
    skops.io.dump(model, tmp / "model.skops")
    return Case(
        format_name="sklearn",
        path=tmp / "model.skops",
        frame=frame,
        expected=model.predict_proba(frame),
        task="classification",
        classes=[0, 1, 2],
        feature_names=FEATURES,
        options=LoadOptions(trusted_types=["sklearn.tree._tree.Tree"]),
    )


@builder("sklearn-regression")
def sklearn_regression(tmp: Path) -> Case:
    frame = numeric_frame()
    model = make_pipeline(StandardScaler(), Ridge()).fit(frame, regression_target(frame))
    skops.io.dump(model, tmp / "model.skops")
    return Case(
        format_name="sklearn",
        path=tmp / "model.skops",
        frame=frame,
        expected=model.predict(frame),
        task="regression",
        classes=[],
        feature_names=FEATURES,
    )


# LightGBM model text -----------------------------------------------------------------

LIGHTGBM_PARAMS = {"verbose": -1, "num_threads": 1, "min_data_in_leaf": 5, "seed": 0}


def lightgbm_train(objective: dict[str, Any], frame: pd.DataFrame, y: Any) -> Any:
    params = {**LIGHTGBM_PARAMS, **objective}
    return lightgbm.train(params, lightgbm.Dataset(frame, y), num_boost_round=5)


@builder("lightgbm-binary")
def lightgbm_binary(tmp: Path) -> Case:
    frame = numeric_frame()
    booster = lightgbm_train({"objective": "binary"}, frame, binary_target(frame))
    booster.save_model(tmp / "model.txt")
    return Case(
        format_name="lightgbm",
        path=tmp / "model.txt",
        frame=frame,
        expected=two_columns(booster.predict(frame)),
        task="classification",
        classes=[0, 1],
        feature_names=FEATURES,
    )


@builder("lightgbm-multiclass")
def lightgbm_multiclass(tmp: Path) -> Case:
    frame = numeric_frame()
    objective = {"objective": "multiclass", "num_class": 3}
    booster = lightgbm_train(objective, frame, multiclass_target(frame))
    booster.save_model(tmp / "model.txt")
    return Case(
        format_name="lightgbm",
        path=tmp / "model.txt",
        frame=frame,
        expected=booster.predict(frame),
        task="classification",
        classes=[0, 1, 2],
        feature_names=FEATURES,
    )


@builder("lightgbm-regression")
def lightgbm_regression(tmp: Path) -> Case:
    frame = numeric_frame()
    booster = lightgbm_train({"objective": "regression"}, frame, regression_target(frame))
    booster.save_model(tmp / "model.txt")
    return Case(
        format_name="lightgbm",
        path=tmp / "model.txt",
        frame=frame,
        expected=booster.predict(frame),
        task="regression",
        classes=[],
        feature_names=FEATURES,
    )


@builder("lightgbm-categorical-named-classes")
def lightgbm_categorical(tmp: Path) -> Case:
    frame = mixed_frame()
    booster = lightgbm_train({"objective": "binary"}, frame, mixed_target(frame))
    booster.save_model(tmp / "model.txt")
    return Case(
        format_name="lightgbm",
        path=tmp / "model.txt",
        frame=frame,
        expected=two_columns(booster.predict(frame)),
        task="classification",
        classes=["no", "yes"],
        feature_names=["f0", "n", "color"],
        options=LoadOptions(classes=["no", "yes"]),
    )


# XGBoost JSON and UBJSON --------------------------------------------------------------

XGBOOST_PARAMS = {"nthread": 1, "max_depth": 3, "seed": 0}


def xgboost_train(objective: dict[str, Any], frame: pd.DataFrame, y: Any) -> Any:
    data = xgboost.DMatrix(frame, y, enable_categorical=True)
    return xgboost.train({**XGBOOST_PARAMS, **objective}, data, num_boost_round=5)


def xgboost_predict(booster: Any, frame: pd.DataFrame) -> Array:
    return np.asarray(booster.predict(xgboost.DMatrix(frame, enable_categorical=True)))


@builder("xgboost-binary-json")
def xgboost_binary(tmp: Path) -> Case:
    frame = numeric_frame()
    booster = xgboost_train({"objective": "binary:logistic"}, frame, binary_target(frame))
    booster.save_model(tmp / "model.json")
    return Case(
        format_name="xgboost",
        path=tmp / "model.json",
        frame=frame,
        expected=two_columns(xgboost_predict(booster, frame)),
        task="classification",
        classes=[0, 1],
        feature_names=FEATURES,
    )


@builder("xgboost-multiclass-ubj")
def xgboost_multiclass(tmp: Path) -> Case:
    frame = numeric_frame()
    objective = {"objective": "multi:softprob", "num_class": 3}
    booster = xgboost_train(objective, frame, multiclass_target(frame))
    booster.save_model(tmp / "model.ubj")
    return Case(
        format_name="xgboost",
        path=tmp / "model.ubj",
        frame=frame,
        expected=xgboost_predict(booster, frame),
        task="classification",
        classes=[0, 1, 2],
        feature_names=FEATURES,
    )


@builder("xgboost-regression-json")
def xgboost_regression(tmp: Path) -> Case:
    frame = numeric_frame()
    objective = {"objective": "reg:squarederror"}
    booster = xgboost_train(objective, frame, regression_target(frame))
    booster.save_model(tmp / "model.json")
    return Case(
        format_name="xgboost",
        path=tmp / "model.json",
        frame=frame,
        expected=xgboost_predict(booster, frame),
        task="regression",
        classes=[],
        feature_names=FEATURES,
    )


@builder("xgboost-categorical-ubj")
def xgboost_categorical(tmp: Path) -> Case:
    frame = mixed_frame()
    booster = xgboost_train({"objective": "binary:logistic"}, frame, mixed_target(frame))
    booster.save_model(tmp / "model.ubj")
    return Case(
        format_name="xgboost",
        path=tmp / "model.ubj",
        frame=frame,
        expected=two_columns(xgboost_predict(booster, frame)),
        task="classification",
        classes=[0, 1],
        feature_names=["f0", "n", "color"],
    )


# ONNX from skl2onnx --------------------------------------------------------------------


def onnx_save(
    model: Any, path: Path, inputs: list[tuple[str, Any]], options: dict[int, Any] | None = None
) -> None:
    onnx_model = convert_sklearn(model, initial_types=inputs, options=options)
    path.write_bytes(onnx_model.SerializeToString())


def onnx_run(path: Path, feed: dict[str, Any]) -> list[Any]:
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    outputs: list[Any] = session.run(None, feed)
    return outputs


MATRIX_INPUT = [("X", FloatTensorType([None, len(FEATURES)]))]


@builder("onnx-matrix-probabilities")
def onnx_matrix_probabilities(tmp: Path) -> Case:
    frame = numeric_frame()
    model = LogisticRegression().fit(frame.to_numpy(np.float32), binary_target(frame))
    onnx_save(model, tmp / "model.onnx", MATRIX_INPUT, {id(model): {"zipmap": False}})
    _, probabilities = onnx_run(tmp / "model.onnx", {"X": frame.to_numpy(np.float32)})
    return Case(
        format_name="onnx",
        path=tmp / "model.onnx",
        frame=frame,
        expected=probabilities,
        task="classification",
        classes=[0, 1],
        feature_names=FEATURES,
        options=LoadOptions(extra={"feature_names": FEATURES}),
        rtol=1e-5,
    )


@builder("onnx-matrix-zipmap")
def onnx_matrix_zipmap(tmp: Path) -> Case:
    frame = numeric_frame()
    labels = np.array(["low", "mid", "high"])[multiclass_target(frame)]
    model = LogisticRegression().fit(frame.to_numpy(np.float32), labels)
    onnx_save(model, tmp / "model.onnx", MATRIX_INPUT)
    _, rows = onnx_run(tmp / "model.onnx", {"X": frame.to_numpy(np.float32)})
    classes: list[Label] = [str(c) for c in model.classes_]
    expected = np.array([[row[c] for c in classes] for row in rows])
    return Case(
        format_name="onnx",
        path=tmp / "model.onnx",
        frame=frame,
        expected=expected,
        task="classification",
        classes=classes,
        feature_names=None,
        rtol=1e-5,
    )


@builder("onnx-columns-zipmap")
def onnx_columns(tmp: Path) -> Case:
    frame = mixed_frame()
    frame["color"] = frame["color"].astype(str)
    encode = ColumnTransformer(
        [("num", StandardScaler(), ["f0", "n"]), ("cat", OneHotEncoder(), ["color"])]
    )
    model = make_pipeline(encode, LogisticRegression()).fit(frame, mixed_target(frame))
    inputs = [
        ("f0", FloatTensorType([None, 1])),
        ("n", Int64TensorType([None, 1])),
        ("color", StringTensorType([None, 1])),
    ]
    onnx_save(model, tmp / "model.onnx", inputs)
    feed = {
        "f0": frame[["f0"]].to_numpy(np.float32),
        "n": frame[["n"]].to_numpy(np.int64),
        "color": frame[["color"]].to_numpy(dtype=object),
    }
    _, rows = onnx_run(tmp / "model.onnx", feed)
    expected = np.array([[row[0], row[1]] for row in rows])
    return Case(
        format_name="onnx",
        path=tmp / "model.onnx",
        frame=frame,
        expected=expected,
        task="classification",
        classes=[0, 1],
        feature_names=["f0", "n", "color"],
        rtol=1e-5,
    )


@builder("onnx-regression")
def onnx_regression(tmp: Path) -> Case:
    frame = numeric_frame()
    model = Ridge().fit(frame.to_numpy(np.float32), regression_target(frame))
    onnx_save(model, tmp / "model.onnx", MATRIX_INPUT)
    (values,) = onnx_run(tmp / "model.onnx", {"X": frame.to_numpy(np.float32)})
    return Case(
        format_name="onnx",
        path=tmp / "model.onnx",
        frame=frame,
        expected=np.asarray(values).reshape(-1),
        task="regression",
        classes=[],
        feature_names=None,
        rtol=1e-5,
    )


# Python callables ---------------------------------------------------------------------


def callable_case(tmp: Path, attr: str) -> tuple[Path, LoadOptions]:
    """Register `callable_model:attr` the way the registry does: keep a copy of the source."""
    target = f"{callable_model.__name__}:{attr}"
    stored = tmp / "callable_model.py"
    shutil.copyfile(resolve_target(target), stored)
    return stored, LoadOptions(extra={"target": target})


@builder("callable-class")
def callable_class(tmp: Path) -> Case:
    frame = numeric_frame()
    path, options = callable_case(tmp, "ThresholdModel")
    expected = callable_model.ThresholdModel().predict_proba(frame)
    return Case(
        format_name="callable",
        path=path,
        frame=frame,
        expected=expected,
        task="classification",
        classes=["low", "high"],
        feature_names=None,
        options=options,
    )


@builder("callable-function-regression")
def callable_function(tmp: Path) -> Case:
    frame = numeric_frame()
    path, options = callable_case(tmp, "row_total")
    return Case(
        format_name="callable",
        path=path,
        frame=frame,
        expected=callable_model.row_total(frame),
        task="regression",
        classes=[],
        feature_names=None,
        options=options,
    )


# Trusted pickles ------------------------------------------------------------------------


@builder("pickle-binary")
def pickle_binary(tmp: Path) -> Case:
    frame = numeric_frame()
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(frame, binary_target(frame))
    joblib.dump(model, tmp / "model.joblib")
    return Case(
        format_name="pickle",
        path=tmp / "model.joblib",
        frame=frame,
        expected=model.predict_proba(frame),
        task="classification",
        classes=[0, 1],
        feature_names=FEATURES,
        options=LoadOptions(trust_pickle=True),
    )


@builder("pickle-regression")
def pickle_regression(tmp: Path) -> Case:
    frame = numeric_frame()
    model = Ridge().fit(frame, regression_target(frame))
    joblib.dump(model, tmp / "model.pkl")
    return Case(
        format_name="pickle",
        path=tmp / "model.pkl",
        frame=frame,
        expected=model.predict(frame),
        task="regression",
        classes=[],
        feature_names=FEATURES,
        options=LoadOptions(trust_pickle=True),
    )
