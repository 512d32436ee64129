"""One contract, checked over every artifact format (like scikit-learn's common checks).

Each case trains a tiny model on generated data, saves it the way users do, and records
what the underlying library itself predicts. The contract tests then load the file through
Bastion and require the same task, classes, shapes and numbers.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import joblib
import lightgbm
import numpy as np
import numpy.typing as npt
import onnxruntime
import pandas as pd
import pytest
import skops.io
import xgboost
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, Int64TensorType, StringTensorType
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from bastion.errors import ArtifactError
from bastion.runtime import detect_format, get_format
from bastion.runtime.adapter import Label, LoadOptions, ModelAdapter, Task
from bastion.runtime.callable import CallableFormat, resolve_target
from bastion.runtime.lightgbm import LightGBMFormat
from bastion.runtime.onnx import ONNXFormat
from bastion.runtime.pickle import PickleFormat
from bastion.runtime.sklearn import SkopsFormat
from bastion.runtime.xgboost import XGBoostFormat

from . import callable_model

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


FILE_CASES = [case_id for case_id in BUILDERS if not case_id.startswith("callable")]
CLASSIFIER_CASES = [case_id for case_id in BUILDERS if "regression" not in case_id]


@pytest.fixture(scope="module", params=list(BUILDERS))
def case(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Case:
    case_id: str = request.param
    return BUILDERS[case_id](tmp_path_factory.mktemp(case_id))


# ---------------------------------------------------------------------------------------
# The contract


@pytest.mark.parametrize("case", FILE_CASES, indirect=True)
def test_detect_format_picks_the_format(case: Case) -> None:
    assert detect_format(case.path).name == case.format_name


def test_load_reports_framework_task_classes_and_features(case: Case) -> None:
    adapter = case.load()

    assert isinstance(adapter, ModelAdapter)
    assert adapter.framework == case.format_name
    assert adapter.task == case.task
    assert adapter.classes == case.classes
    assert adapter.feature_names == case.feature_names


def test_load_gives_labels_as_plain_python_values(case: Case) -> None:
    adapter = case.load()

    assert all(type(label) in (int, str) for label in adapter.classes)
    json.dumps(adapter.classes)


def test_predict_follows_the_output_contract(case: Case) -> None:
    predictions = case.load().predict(case.frame)

    assert predictions.dtype == np.float64
    if case.task == "classification":
        assert predictions.shape == (len(case.frame), len(case.classes))
        assert np.all((predictions >= 0.0) & (predictions <= 1.0))
        np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)
    else:
        assert predictions.shape == (len(case.frame),)


def test_predict_equals_the_library_itself(case: Case) -> None:
    predictions = case.load().predict(case.frame)

    np.testing.assert_allclose(predictions, case.expected, rtol=case.rtol)


def test_predict_leaves_the_frame_unchanged(case: Case) -> None:
    frame = case.frame.copy()

    case.load().predict(frame)

    pd.testing.assert_frame_equal(frame, case.frame)


def test_predict_single_row_equals_its_batch_row(case: Case) -> None:
    adapter = case.load()

    batch = adapter.predict(case.frame)
    for row in (0, len(case.frame) - 1):
        single = adapter.predict(case.frame.iloc[row : row + 1])
        assert single.shape == (1, *batch.shape[1:])
        np.testing.assert_allclose(single[0], batch[row], rtol=case.rtol)


@pytest.mark.parametrize("case", CLASSIFIER_CASES, indirect=True)
def test_load_refuses_classes_of_the_wrong_length(case: Case) -> None:
    options = dataclasses.replace(case.options, classes=["only-one"])

    with pytest.raises(ArtifactError, match="classes lists 1 labels"):
        get_format(case.format_name).load(case.path, options)


@pytest.mark.parametrize("case", FILE_CASES, indirect=True)
def test_load_refuses_truncated_file(case: Case, tmp_path: Path) -> None:
    data = case.path.read_bytes()
    damaged = tmp_path / case.path.name
    damaged.write_bytes(data[: len(data) // 2])

    with pytest.raises(ArtifactError, match=damaged.name):
        get_format(case.format_name).load(damaged, case.options)


@pytest.mark.parametrize("case", FILE_CASES, indirect=True)
def test_load_refuses_random_bytes(case: Case, tmp_path: Path) -> None:
    damaged = tmp_path / case.path.name
    damaged.write_bytes(np.random.default_rng(0).bytes(2048))

    with pytest.raises(ArtifactError, match=damaged.name):
        get_format(case.format_name).load(damaged, case.options)


# ---------------------------------------------------------------------------------------
# Format-specific behaviour


def test_detect_format_names_the_choices_for_unknown_files(tmp_path: Path) -> None:
    path = tmp_path / "notes.json"
    path.write_text('{"hello": "world"}')

    with pytest.raises(ArtifactError, match="pass --framework"):
        detect_format(path)


def test_lightgbm_load_refuses_every_truncation(tmp_path: Path) -> None:
    """LightGBM aborts the process on some truncated files; they must never reach it.

    Only a cut that removes exactly the last line (``pandas_categorical:...``, which models
    saved outside Python do not have) or just the final newline cannot be told apart.
    """
    source = tmp_path / "source"
    source.mkdir()
    data = lightgbm_categorical(source).path.read_bytes()
    last_line = data.rindex(b"\npandas_categorical:")
    undetectable = {last_line, last_line + 1, len(data) - 1}
    line_ends = [index + 1 for index, byte in enumerate(data) if byte == ord("\n")]
    cuts = {*range(0, len(data), 37), *line_ends, *(end - 2 for end in line_ends)}
    damaged = tmp_path / "model.txt"
    for cut in sorted(cut for cut in cuts - undetectable if cut < len(data)):
        damaged.write_bytes(data[:cut])
        with pytest.raises(ArtifactError):
            LightGBMFormat().load(damaged, LoadOptions())


def test_lightgbm_categorical_accepts_plain_strings(tmp_path: Path) -> None:
    case = lightgbm_categorical(tmp_path)
    plain = case.frame.assign(color=case.frame["color"].astype(str))

    np.testing.assert_allclose(case.load().predict(plain), case.expected, rtol=1e-6)


def test_lightgbm_unseen_category_predicts_like_missing(tmp_path: Path) -> None:
    case = lightgbm_categorical(tmp_path)
    booster = lightgbm.Booster(model_file=case.path)
    unseen = case.frame.iloc[:3].assign(color=["purple"] * 3)
    missing = case.frame.iloc[:3].assign(
        color=pd.Categorical([None] * 3, categories=["blue", "green", "red"])
    )

    np.testing.assert_allclose(
        case.load().predict(unseen), two_columns(booster.predict(missing)), rtol=1e-6
    )


def test_xgboost_categorical_accepts_plain_strings(tmp_path: Path) -> None:
    case = xgboost_categorical(tmp_path)
    plain = case.frame.assign(color=case.frame["color"].astype(str))

    np.testing.assert_allclose(case.load().predict(plain), case.expected, rtol=1e-6)


def test_xgboost_sniff_ignores_other_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"version": [1, 0], "learners": []}))

    assert not XGBoostFormat().sniff(path)


def test_xgboost_load_refuses_margin_objective(tmp_path: Path) -> None:
    frame = numeric_frame()
    booster = xgboost_train({"objective": "binary:logitraw"}, frame, binary_target(frame))
    booster.save_model(tmp_path / "model.json")

    with pytest.raises(ArtifactError, match="binary:logitraw"):
        XGBoostFormat().load(tmp_path / "model.json", LoadOptions())


def test_xgboost_load_without_library_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.ubj"
    path.write_bytes(b"{}")
    monkeypatch.setitem(sys.modules, "xgboost", None)

    with pytest.raises(ArtifactError, match=r"pip install 'bastion\[xgboost\]'"):
        XGBoostFormat().load(path, LoadOptions())


def test_onnx_load_without_library_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "model.onnx"
    path.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "onnxruntime", None)

    with pytest.raises(ArtifactError, match=r"pip install 'bastion\[onnx\]'"):
        ONNXFormat().load(path, LoadOptions())


def test_onnx_load_without_onnx_package_falls_back_to_class_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    case = onnx_matrix_probabilities(tmp_path)
    monkeypatch.setitem(sys.modules, "onnx", None)

    adapter = ONNXFormat().load(case.path, LoadOptions())

    assert adapter.classes == [0, 1]


def test_onnx_matrix_input_takes_declared_feature_columns(tmp_path: Path) -> None:
    case = onnx_matrix_probabilities(tmp_path)
    shuffled = case.frame[list(reversed(FEATURES))]

    predictions = case.load().predict(shuffled)

    np.testing.assert_allclose(predictions, case.expected, rtol=1e-5)


def test_onnx_load_refuses_feature_names_of_wrong_length(tmp_path: Path) -> None:
    case = onnx_matrix_probabilities(tmp_path)
    options = LoadOptions(extra={"feature_names": ["f0", "f1"]})

    with pytest.raises(ArtifactError, match="lists 2 names but ONNX input 'X' takes 4"):
        ONNXFormat().load(case.path, options)


def test_pickle_load_refuses_without_trust(tmp_path: Path) -> None:
    case = pickle_binary(tmp_path)

    with pytest.raises(ArtifactError, match="--trust-pickle"):
        PickleFormat().load(case.path, LoadOptions(trust_pickle=False))


def skops_with_custom_function(path: Path) -> None:
    frame = numeric_frame()
    model = make_pipeline(FunctionTransformer(callable_model.add_one), LogisticRegression())
    skops.io.dump(model.fit(frame, binary_target(frame)), path)


CUSTOM_FUNCTION = f"{callable_model.__name__}.add_one"


def test_skops_load_refuses_untrusted_types(tmp_path: Path) -> None:
    skops_with_custom_function(tmp_path / "model.skops")

    with pytest.raises(ArtifactError, match=CUSTOM_FUNCTION):
        SkopsFormat().load(tmp_path / "model.skops", LoadOptions())


def test_skops_load_accepts_types_named_as_trusted(tmp_path: Path) -> None:
    skops_with_custom_function(tmp_path / "model.skops")
    options = LoadOptions(trusted_types=[CUSTOM_FUNCTION])

    adapter = SkopsFormat().load(tmp_path / "model.skops", options)

    assert adapter.predict(numeric_frame(rows=3)).shape == (3, 2)


SCRATCH_MODULE = "bastion_scratch_model"


@pytest.fixture
def scratch_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An importable module whose source a test may edit; forgotten again afterwards."""
    folder = tmp_path / "site"
    folder.mkdir()
    source = folder / f"{SCRATCH_MODULE}.py"
    source.write_text("def predict(frame):\n    return frame.sum(axis=1)\n")
    monkeypatch.syspath_prepend(str(folder))
    yield source
    sys.modules.pop(SCRATCH_MODULE, None)


def test_callable_load_refuses_changed_source(scratch_module: Path, tmp_path: Path) -> None:
    target = f"{SCRATCH_MODULE}:predict"
    stored = tmp_path / "stored.py"
    shutil.copyfile(resolve_target(target), stored)
    scratch_module.write_text("def predict(frame):\n    return frame.sum(axis=1) * 2\n")

    with pytest.raises(ArtifactError, match="source changed since registration"):
        CallableFormat().load(stored, LoadOptions(extra={"target": target}))


def test_callable_resolve_target_returns_module_source(scratch_module: Path) -> None:
    assert resolve_target(f"{SCRATCH_MODULE}:predict") == scratch_module


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("no_colon_here", "must be 'module:attr'"),
        ("bastion_no_such_module:predict", "cannot import module"),
        (f"{SCRATCH_MODULE}:missing", "has no attribute 'missing'"),
    ],
)
def test_callable_resolve_target_explains_bad_targets(
    scratch_module: Path, target: str, message: str
) -> None:
    with pytest.raises(ArtifactError, match=message):
        resolve_target(target)


def test_callable_sniff_never_claims_a_file(scratch_module: Path) -> None:
    assert not CallableFormat().sniff(scratch_module)
    with pytest.raises(ArtifactError, match="pass --framework"):
        detect_format(scratch_module)
