"""ONNX graphs run with onnxruntime on the CPU.

Two input layouts are understood: one 2-D float tensor ``[n, n_features]`` holding every
feature, or one ``[n, 1]`` tensor per feature column, named after it (what skl2onnx makes of a
pipeline with a `ColumnTransformer`). Outputs are a float probability tensor ``[n, k]``,
skl2onnx's ZipMap (a list of ``{label: probability}`` dicts), or one float value per row.

onnxruntime is an optional extra, imported only when a model of this format is loaded. The
`onnx` package, when present, is used to read class labels from the graph.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
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
)

_FLOAT_TYPES: dict[str, type[np.generic]] = {
    "tensor(float)": np.float32,
    "tensor(double)": np.float64,
}
_COLUMN_TYPES: dict[str, type[np.generic]] = {
    **_FLOAT_TYPES,
    "tensor(int64)": np.int64,
    "tensor(string)": np.object_,
}
_LABEL_ATTRIBUTES = ("classlabels_int64s", "classlabels_strings", "classlabels_ints")
_CLASSIFIER_OPS = ("ZipMap", "TreeEnsembleClassifier", "LinearClassifier", "SVMClassifier")

OutputKind = Literal["probabilities", "zipmap", "values"]


def _ort_message(exc: Exception) -> str:
    """Drop onnxruntime's ``[ONNXRuntimeError] : 7 : INVALID_PROTOBUF :`` prefix."""
    return re.sub(r"^\[ONNXRuntimeError\] : \d+ : \w+ : ", "", str(exc)).strip()


@dataclass(frozen=True)
class _Input:
    name: str
    dtype: type[np.generic]
    rank: int
    width: int | None = None


@dataclass(frozen=True)
class _Output:
    name: str
    kind: OutputKind
    width: int | None


def graph_class_labels(path: Path) -> list[Label] | None:
    """Class labels stored on the graph's ZipMap or classifier node, if `onnx` can read them."""
    try:
        import onnx
        import onnx.helper
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # onnxruntime accepted the file; anything odd here just means "unknown"
        return None
    found: list[Label] | None = None
    for node in model.graph.node:
        if node.op_type not in _CLASSIFIER_OPS:
            continue
        for attribute in node.attribute:
            if attribute.name in _LABEL_ATTRIBUTES:
                values = onnx.helper.get_attribute_value(attribute)
                labels: list[Label] = [
                    v.decode() if isinstance(v, bytes) else int(v) for v in values
                ]
                if node.op_type == "ZipMap":
                    return labels
                found = labels
    return found


def _describe_inputs(session: Any) -> tuple[_Input | None, list[_Input]]:
    """The single 2-D float input, or else one input per feature column."""
    inputs = session.get_inputs()
    if len(inputs) == 1 and inputs[0].type in _FLOAT_TYPES and len(inputs[0].shape) == 2:
        only = inputs[0]
        width = only.shape[1] if isinstance(only.shape[1], int) else None
        return _Input(only.name, _FLOAT_TYPES[only.type], 2, width), []
    columns = []
    for item in inputs:
        dtype = _COLUMN_TYPES.get(item.type)
        shape = list(item.shape)
        if dtype is None or len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] != 1):
            allowed = ", ".join(_COLUMN_TYPES)
            raise ArtifactError(
                f"ONNX input {item.name!r} must be a [n, 1] tensor of {allowed}; "
                f"got {item.type} {shape}"
            )
        columns.append(_Input(item.name, dtype, len(shape)))
    return None, columns


def _describe_output(session: Any) -> _Output:
    outputs = session.get_outputs()
    for item in outputs:
        if item.type.startswith("seq(map("):
            return _Output(item.name, "zipmap", None)
    floats = [item for item in outputs if item.type in _FLOAT_TYPES]
    for item in floats:
        shape = list(item.shape)
        if len(shape) == 2 and isinstance(shape[1], int) and shape[1] >= 2:
            return _Output(item.name, "probabilities", shape[1])
    if len(floats) == 1 and len(outputs) > 1:
        # a label output next to a float one: probabilities of unknown width
        return _Output(floats[0].name, "probabilities", None)
    if len(outputs) == 1 and floats:
        shape = list(floats[0].shape)
        wide = len(shape) == 2 and isinstance(shape[1], int) and shape[1] > 1
        if len(shape) in (1, 2) and not wide:
            return _Output(floats[0].name, "values", None)
    listed = ", ".join(f"{item.name} {item.type} {list(item.shape)}" for item in outputs)
    raise ArtifactError(
        "ONNX outputs must be class probabilities [n, k], a ZipMap, or one value per row; "
        f"got {listed}"
    )


def _declared_feature_names(options: LoadOptions, matrix: _Input) -> list[str] | None:
    """Names for the columns of a single 2-D input, if the user gave them at registration."""
    declared = options.extra.get("feature_names")
    if declared is None:
        return None
    if not isinstance(declared, list) or not all(isinstance(n, str) for n in declared):
        raise ArtifactError(f"feature_names must be a list of strings; got {declared!r}")
    if matrix.width is not None and len(declared) != matrix.width:
        raise ArtifactError(
            f"feature_names lists {len(declared)} names but ONNX input {matrix.name!r} "
            f"takes {matrix.width} features"
        )
    return list(declared)


class ONNXAdapter(ModelAdapter):
    framework = "onnx"

    def __init__(
        self, session: Any, graph_labels: list[Label] | None, options: LoadOptions
    ) -> None:
        self.session = session
        self._matrix, self._columns = _describe_inputs(session)
        self._output = _describe_output(session)
        if self._matrix is None:
            self.feature_names: list[str] | None = [item.name for item in self._columns]
        else:
            self.feature_names = _declared_feature_names(options, self._matrix)

        self.task: Task = "regression" if self._output.kind == "values" else "classification"
        self.classes: list[Label] = []
        self._zipmap_keys: list[Label] = []
        if self.task == "classification":
            self.classes = self._resolve_classes(options.classes, graph_labels)
            if self._output.kind == "zipmap":
                self._zipmap_keys = list(graph_labels or self.classes)

    def _resolve_classes(
        self, declared: list[Label] | None, graph_labels: list[Label] | None
    ) -> list[Label]:
        width = self._output.width
        if declared is not None:
            classes = list(declared)
        elif graph_labels is not None:
            classes = list(graph_labels)
        elif width is not None:
            classes = list(range(width))
        else:
            raise ArtifactError(
                "cannot read the class labels of this ONNX model: install onnx "
                "(pip install onnx) or register it with --classes"
            )
        expected = width if width is not None else len(graph_labels or classes)
        if len(classes) != expected:
            raise ArtifactError(f"classes lists {len(classes)} labels but the model has {expected}")
        return classes

    def _feed(self, frame: pd.DataFrame) -> dict[str, npt.NDArray[Any]]:
        if self._matrix is not None:
            data = frame if self.feature_names is None else frame[self.feature_names]
            return {self._matrix.name: data.to_numpy(dtype=self._matrix.dtype)}
        feed: dict[str, npt.NDArray[Any]] = {}
        for item in self._columns:
            column = frame[item.name]
            if item.dtype is np.object_:
                values = np.array(["" if pd.isna(v) else str(v) for v in column], dtype=object)
            else:
                values = column.to_numpy(dtype=item.dtype)
            feed[item.name] = values.reshape(-1, 1) if item.rank == 2 else values
        return feed

    def predict(self, frame: pd.DataFrame) -> Predictions:
        feed = self._feed(frame)
        try:
            (raw,) = self.session.run([self._output.name], feed)
        except Exception as exc:  # onnxruntime's errors share no base class but Exception
            raise ModelFailure(f"onnxruntime could not predict: {_ort_message(exc)}") from exc
        if self._output.kind == "zipmap":
            try:
                rows = [[row[key] for key in self._zipmap_keys] for row in raw]
            except KeyError as exc:
                raise ModelFailure(
                    f"the model's ZipMap has no label {exc.args[0]!r}; "
                    "register it with the labels the model uses as --classes"
                ) from exc
            return np.array(rows, dtype=np.float64).reshape(len(frame), len(self.classes))
        values = as_predictions(raw)
        if self._output.kind == "values":
            if values.size != len(frame):
                raise ModelFailure(f"the model returned {values.size} values for {len(frame)} rows")
            return values.reshape(-1)
        return values.reshape(len(frame), -1)


class ONNXFormat(ArtifactFormat):
    name = "onnx"
    libraries = ("onnxruntime",)

    def sniff(self, path: Path) -> bool:
        return path.is_file() and path.suffix == ".onnx"

    def load(self, path: Path, options: LoadOptions) -> ModelAdapter:
        try:
            import onnxruntime
        except ImportError as exc:
            raise ArtifactError(
                f"{path.name} is an ONNX model but onnxruntime is not installed: "
                "pip install 'bastion[onnx]'"
            ) from exc

        settings = onnxruntime.SessionOptions()
        settings.intra_op_num_threads = 1
        settings.inter_op_num_threads = 1
        settings.log_severity_level = 3  # errors only; warnings are not actionable here
        try:
            session = onnxruntime.InferenceSession(
                str(path), sess_options=settings, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime's errors share no base class but Exception
            raise ArtifactError(
                f"{path.name} is not a loadable ONNX model: {_ort_message(exc)}"
            ) from exc
        return ONNXAdapter(session, graph_class_labels(path), options)
