"""Open Inference Protocol v2 (KServe V2) REST routes, so clients such as tritonclient work.

An OIP "model" is a Bastion deployment (`/v2/models/{deployment}`), and its OIP version is
the registered model version that deployment serves. Inputs are either one tensor per
feature column (named after the column, shape ``[n]`` or ``[n, 1]``) or, for models whose
columns are all numeric, one 2-D tensor of shape ``[n, n_columns]`` in signature order.
Outputs are ``probabilities`` and ``label`` for classifiers, ``prediction`` for regressors.

This module only translates: it runs the deployment's guard (contract, OOD, PII) and calls
the same `ServingService.score` as `/v1`, so checks, batching, the decision log and metrics
behave identically. Responses stay protocol-shaped: guard findings go to the decision
record and the metrics only. Errors are raised as `BastionError`s and
become problem documents in `bastion.server.problems`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

import bastion
from bastion.errors import FieldError, InvalidInput, MalformedRequest, NotFound, NotReady
from bastion.registry.signature import ColumnSignature, InputSignature
from bastion.server.body import parse_json, read_body
from bastion.server.tensors import (
    FLOATS,
    INFERENCE_HEADER,
    INTEGERS,
    Tensor,
    encode_binary,
    parse_inputs,
    split_body,
)
from bastion.serving.deployment import LiveDeployment
from bastion.serving.inputs import Instance
from bastion.serving.service import Decision, ServingService

EXTENSIONS = ["binary_tensor_data"]
NUMBERS = INTEGERS | FLOATS


def _json(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def column_datatype(column: ColumnSignature) -> str:
    """The datatype a column is advertised with in model metadata."""
    if column.kind == "numeric":
        return "FP64"
    if column.kind == "boolean":
        return "BOOL"
    if column.kind == "categorical" and column.categories and all(map(_is_int, column.categories)):
        return "INT64"
    return "BYTES"


def _accepted(column: ColumnSignature) -> frozenset[str]:
    advertised = column_datatype(column)
    if column.kind == "numeric":
        return NUMBERS
    return INTEGERS if advertised == "INT64" else frozenset({advertised})


def _label_datatype(deployment: LiveDeployment) -> str:
    classes = deployment.version.output_signature.classes
    return "INT64" if classes and all(map(_is_int, classes)) else "BYTES"


@dataclass(frozen=True)
class OutputSpec:
    name: str
    datatype: str
    shape: list[int]


def output_specs(deployment: LiveDeployment) -> list[OutputSpec]:
    """The outputs a deployment's model produces, with `-1` for the batch dimension."""
    if deployment.version.output_signature.task == "regression":
        return [OutputSpec("prediction", "FP64", [-1])]
    n_classes = len(deployment.version.output_signature.classes)
    return [
        OutputSpec("probabilities", "FP64", [-1, n_classes]),
        OutputSpec("label", _label_datatype(deployment), [-1]),
    ]


def _deployment(request: Request) -> LiveDeployment:
    """The deployment the path names; a version other than the one it serves is 404."""
    service: ServingService = request.app.state.service
    deployment = service.deployment(request.path_params["model"])
    version = request.path_params.get("version")
    if version is not None and version != str(deployment.version.version):
        raise NotFound(
            f"deployment {deployment.name} serves version {deployment.version.version} of "
            f"model {deployment.version.name}, not version {version!r}"
        )
    return deployment


async def server_metadata(request: Request) -> Response:
    return _json({"name": "bastion", "version": bastion.__version__, "extensions": EXTENSIONS})


async def server_live(request: Request) -> Response:
    return _json({"live": True})


async def server_ready(request: Request) -> Response:
    service: ServingService = request.app.state.service
    if not service.ready:
        raise NotReady("the server is starting or shutting down")
    return _json({"ready": True})


async def model_metadata(request: Request) -> Response:
    deployment = _deployment(request)
    version = deployment.version
    return _json(
        {
            "name": deployment.name,
            "versions": [str(version.version)],
            "platform": version.framework,
            "inputs": [
                {"name": c.name, "datatype": column_datatype(c), "shape": [-1, 1]}
                for c in version.input_signature.columns
            ],
            "outputs": [
                {"name": o.name, "datatype": o.datatype, "shape": o.shape}
                for o in output_specs(deployment)
            ],
        }
    )


async def model_ready(request: Request) -> Response:
    service: ServingService = request.app.state.service
    deployment = _deployment(request)
    if not service.ready:
        raise NotReady(f"deployment {deployment.name} is not ready")
    return _json({"name": deployment.name, "ready": True})


def _column_values(tensors: list[Tensor], signature: InputSignature) -> dict[str, list[Any]]:
    """Each column's values from one tensor per column, checked against the signature."""
    by_name = {t.name: t for t in tensors}
    errors: list[FieldError] = []
    unknown = [t.name for t in tensors if signature.column(t.name) is None]
    for name in unknown:
        errors.append(
            FieldError(f"inputs.{name}", f"is not an input of this model ({signature.names})")
        )
    for column in signature.columns:
        tensor = by_name.get(column.name)
        where = f"inputs.{column.name}"
        if tensor is None:
            errors.append(FieldError(where, "is required", column_datatype(column)))
        elif tensor.datatype not in _accepted(column):
            errors.append(
                FieldError(
                    f"{where}.datatype",
                    f"{tensor.datatype} cannot feed {column.kind} column {column.name}; "
                    f"send {column_datatype(column)}",
                    column_datatype(column),
                )
            )
        elif len(tensor.shape) not in (1, 2) or tensor.shape[1:] not in ((), (1,)):
            errors.append(
                FieldError(f"{where}.shape", f"must be [n] or [n, 1], got {list(tensor.shape)}")
            )
    if not errors:
        counts = {t.name: t.shape[0] for t in tensors}
        if len(set(counts.values())) > 1:
            errors.append(FieldError("inputs", f"tensors disagree on the row count: {counts}"))
    if errors:
        shown = "; ".join(f"{e.field} {e.message}" for e in errors[:5])
        raise InvalidInput(f"{len(errors)} invalid input(s): {shown}", errors=errors)
    return {name: by_name[name].values for name in signature.names}


def _matrix_columns(tensor: Tensor, signature: InputSignature) -> dict[str, list[Any]]:
    """Each column's values from one ``[n, n_columns]`` tensor in signature order."""
    where = f"inputs.{tensor.name}"
    names = signature.names
    if any(c.kind != "numeric" for c in signature.columns):
        raise InvalidInput(
            f"input {tensor.name!r} is not a column of this model; a single 2-D tensor only "
            f"feeds models whose columns are all numeric. Send one tensor per column: {names}",
            errors=[FieldError(where, f"is not an input of this model ({names})")],
        )
    if len(tensor.shape) != 2 or tensor.shape[1] != len(names):
        raise InvalidInput(
            f"a 2-D input tensor must have shape [n, {len(names)}] (columns {names})",
            errors=[FieldError(f"{where}.shape", f"must be [n, {len(names)}]")],
        )
    if tensor.datatype not in NUMBERS:
        raise InvalidInput(
            f"a 2-D input tensor must be numeric, got {tensor.datatype}",
            errors=[FieldError(f"{where}.datatype", "must be numeric", "FP64")],
        )
    width = len(names)
    return {name: tensor.values[i::width] for i, name in enumerate(names)}


def build_rows(tensors: list[Tensor], signature: InputSignature, max_rows: int) -> list[Instance]:
    """Turn decoded tensors into model rows (column → scalar), one per instance."""
    if len(tensors) == 1 and signature.column(tensors[0].name) is None:
        columns = _matrix_columns(tensors[0], signature)
    else:
        columns = _column_values(tensors, signature)
    n = len(next(iter(columns.values()), []))
    if not 1 <= n <= max_rows:
        raise InvalidInput(
            f"a request must hold between 1 and {max_rows} rows, got {n}",
            errors=[FieldError("inputs", f"must hold between 1 and {max_rows} rows")],
        )
    # A NaN in a floating-point tensor is how the protocol sends a missing value; the input
    # contract then judges it as missing (allowed for nullable columns) rather than as NaN.
    return [{name: _missing_nan(values[i]) for name, values in columns.items()} for i in range(n)]


def _missing_nan(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


def _requested_outputs(
    payload: dict[str, Any], deployment: LiveDeployment
) -> list[tuple[str, bool]]:
    """(name, as binary) for each output to return, in the order asked for."""
    parameters = payload.get("parameters", {})
    if not isinstance(parameters, dict):
        raise MalformedRequest("'parameters' must be an object")
    binary_default = parameters.get("binary_data_output", False) is True
    known = [o.name for o in output_specs(deployment)]
    requested = payload.get("outputs")
    if requested is None:
        return [(name, binary_default) for name in known]
    if not isinstance(requested, list):
        raise MalformedRequest("'outputs' must be a list of requested outputs")
    chosen: list[tuple[str, bool]] = []
    for index, output in enumerate(requested):
        name = output.get("name") if isinstance(output, dict) else None
        if name not in known:
            raise MalformedRequest(
                f"outputs[{index}] names {name!r}; this model's outputs are {known}",
                errors=[FieldError(f"outputs[{index}].name", f"must be one of {known}")],
            )
        options = output.get("parameters") or {}
        binary = options.get("binary_data", binary_default) if isinstance(options, dict) else None
        if not isinstance(binary, bool):
            raise MalformedRequest(f"outputs.{name}.parameters.binary_data must be true or false")
        chosen.append((name, binary))
    return chosen


def _output_values(name: str, deployment: LiveDeployment, decisions: list[Decision]) -> list[Any]:
    if name == "prediction":
        return [d.output["value"] for d in decisions]
    if name == "probabilities":
        return [p for d in decisions for p in d.output["probabilities"].values()]
    if _label_datatype(deployment) == "BYTES":
        return [str(d.output["label"]) for d in decisions]
    return [d.output["label"] for d in decisions]


def infer_response(
    header: dict[str, Any],
    deployment: LiveDeployment,
    decisions: list[Decision],
    requested: list[tuple[str, bool]],
) -> Response:
    """JSON outputs, or a JSON header followed by binary outputs when any asked for binary."""
    specs = {o.name: o for o in output_specs(deployment)}
    outputs: list[dict[str, Any]] = []
    chunks: list[bytes] = []
    for name, binary in requested:
        spec = specs[name]
        values = _output_values(name, deployment, decisions)
        shape = [len(decisions), *spec.shape[1:]]
        output: dict[str, Any] = {"name": name, "datatype": spec.datatype, "shape": shape}
        if binary:
            chunk = encode_binary(spec.datatype, values)
            output["parameters"] = {"binary_data_size": len(chunk)}
            chunks.append(chunk)
        else:
            output["data"] = values
        outputs.append(output)
    body = orjson.dumps({**header, "outputs": outputs})
    if not chunks:
        return Response(body, media_type="application/json")
    return Response(
        body + b"".join(chunks),
        media_type="application/octet-stream",
        headers={"Inference-Header-Content-Length": str(len(body))},
    )


async def infer(request: Request) -> Response:
    """Score the request's rows through the deployment, exactly as `/v1` decide does."""
    started = time.perf_counter()
    service: ServingService = request.app.state.service
    deployment = _deployment(request)
    body = await read_body(request, service.spec.server.max_body_bytes)
    json_part, binary_part = split_body(body, request.headers.get(INFERENCE_HEADER))
    payload = parse_json(json_part)
    if not isinstance(payload, dict):
        raise MalformedRequest(
            f"the inference request must be a JSON object, got {type(payload).__name__}"
        )
    request_id = payload.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise MalformedRequest(
            "'id' must be a string", errors=[FieldError("id", "must be a string")]
        )
    tensors = parse_inputs(payload.get("inputs"), binary_part)
    requested = _requested_outputs(payload, deployment)
    signature = deployment.version.input_signature
    rows = build_rows(tensors, signature, service.spec.server.max_instances)
    batch = deployment.guard.check(rows, prefix="inputs")
    decisions = await service.score(
        deployment, batch, [None] * len(rows), api="oip", started=started
    )
    header: dict[str, Any] = {
        "model_name": deployment.name,
        "model_version": str(deployment.version.version),
    }
    if request_id is not None:
        header["id"] = request_id
    return infer_response(header, deployment, decisions, requested)


def _both(path: str, endpoint: Any, method: str) -> list[Route]:
    """The route with and without `/versions/{version}` after the model name."""
    versioned = path.replace("{model}", "{model}/versions/{version}")
    return [Route(path, endpoint, methods=[method]), Route(versioned, endpoint, methods=[method])]


routes = [
    Route("/v2", server_metadata, methods=["GET"]),
    Route("/v2/health/live", server_live, methods=["GET"]),
    Route("/v2/health/ready", server_ready, methods=["GET"]),
    *_both("/v2/models/{model}", model_metadata, "GET"),
    *_both("/v2/models/{model}/ready", model_ready, "GET"),
    *_both("/v2/models/{model}/infer", infer, "POST"),
]
