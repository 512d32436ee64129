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
from collections.abc import Iterator
from pathlib import Path

import lightgbm
import numpy as np
import pandas as pd
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from bastion.errors import ArtifactError
from bastion.runtime import detect_format, get_format
from bastion.runtime.adapter import LoadOptions, ModelAdapter
from bastion.runtime.callable import CallableFormat, resolve_target
from bastion.runtime.lightgbm import LightGBMFormat
from bastion.runtime.onnx import ONNXFormat
from bastion.runtime.pickle import PickleFormat
from bastion.runtime.sklearn import SkopsFormat
from bastion.runtime.xgboost import XGBoostFormat
from tests.model_cases import (
    BUILDERS,
    FEATURES,
    Case,
    binary_target,
    lightgbm_categorical,
    numeric_frame,
    onnx_matrix_probabilities,
    pickle_binary,
    two_columns,
    xgboost_categorical,
    xgboost_train,
)

from . import callable_model

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


def test_predict_records_equals_predict_on_a_frame(case: Case) -> None:
    adapter = case.load()
    rows = [{str(k): v for k, v in row.items()} for row in case.frame.to_dict(orient="records")]

    from_records = adapter.predict_records(rows, [str(c) for c in case.frame.columns])

    np.testing.assert_allclose(from_records, adapter.predict(case.frame), rtol=case.rtol)


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
