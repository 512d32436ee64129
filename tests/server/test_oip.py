"""The Open Inference Protocol v2 routes, through Starlette's test client and through the
unmodified `tritonclient.http` client against a real uvicorn server."""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as triton
import uvicorn
from starlette.testclient import TestClient
from tritonclient.utils import InferenceServerException

import bastion
from tests.server.conftest import CLASSES, MAX_BODY_BYTES, NUMERIC, Served

PROBLEM = "application/problem+json"


@pytest.fixture
def client(served: Served) -> Iterator[TestClient]:
    with TestClient(served.app(), headers=served.headers) as test_client:
        yield test_client


def column_inputs(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One JSON tensor per column: numeric ones nested as [n, 1], the category flat."""
    inputs: list[dict[str, Any]] = [
        {
            "name": name,
            "datatype": "FP64",
            "shape": [len(frame), 1],
            "data": [[v] for v in frame[name].tolist()],
        }
        for name in NUMERIC
    ]
    inputs.append(
        {
            "name": "region",
            "datatype": "BYTES",
            "shape": [len(frame)],
            "data": [str(v) for v in frame["region"]],
        }
    )
    return inputs


def outputs_by_name(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {output["name"]: output for output in body["outputs"]}


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["status"] == status
    return problem


def test_server_metadata_names_bastion_and_binary_extension(client: TestClient) -> None:
    response = client.get("/v2")

    assert response.json() == {
        "name": "bastion",
        "version": bastion.__version__,
        "extensions": ["binary_tensor_data"],
    }


def test_health_live_and_ready_answer_200(client: TestClient) -> None:
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}


def test_health_ready_is_503_problem_before_start(served: Served) -> None:
    unstarted = TestClient(served.app())  # no `with`: the lifespan (and start-up) never runs

    assert_problem(unstarted.get("/v2/health/ready"), 503)
    assert unstarted.get("/v2/health/live").status_code == 200


def test_model_metadata_describes_columns_and_outputs(client: TestClient) -> None:
    metadata = client.get("/v2/models/credit").json()

    assert metadata == {
        "name": "credit",
        "versions": ["1"],
        "platform": "lightgbm",
        "inputs": [
            {"name": "income", "datatype": "FP64", "shape": [-1, 1]},
            {"name": "debt", "datatype": "FP64", "shape": [-1, 1]},
            {"name": "age", "datatype": "FP64", "shape": [-1, 1]},
            {"name": "region", "datatype": "BYTES", "shape": [-1, 1]},
        ],
        "outputs": [
            {"name": "probabilities", "datatype": "FP64", "shape": [-1, 2]},
            {"name": "label", "datatype": "INT64", "shape": [-1]},
        ],
    }
    assert client.get("/v2/models/credit/versions/1").json() == metadata


def test_model_ready_with_and_without_version(client: TestClient) -> None:
    assert client.get("/v2/models/credit/ready").json() == {"name": "credit", "ready": True}
    assert client.get("/v2/models/credit/versions/1/ready").status_code == 200


def test_infer_per_column_tensors_equals_direct_predictions(
    served: Served, client: TestClient
) -> None:
    before = served.decision_count()

    response = client.post(
        "/v2/models/credit/infer", json={"id": "req-1", "inputs": column_inputs(served.rows)}
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["model_name"], body["model_version"], body["id"]) == ("credit", "1", "req-1")
    expected = served.expected("credit", served.rows)
    outputs = outputs_by_name(body)
    assert outputs["probabilities"]["shape"] == [len(served.rows), 2]
    assert outputs["probabilities"]["data"] == expected.reshape(-1).tolist()
    assert outputs["label"] == {
        "name": "label",
        "datatype": "INT64",
        "shape": [len(served.rows)],
        "data": expected.argmax(axis=1).tolist(),
    }
    assert served.decision_count() == before + len(served.rows)


def test_infer_single_matrix_tensor_feeds_numeric_model(served: Served, client: TestClient) -> None:
    matrix = served.rows[NUMERIC].to_numpy()
    tensor = {"name": "input__0", "datatype": "FP64", "shape": list(matrix.shape)}

    response = client.post(
        "/v2/models/numeric/versions/1/infer",
        json={"inputs": [{**tensor, "data": matrix.tolist()}]},
    )

    assert response.status_code == 200, response.text
    outputs = outputs_by_name(response.json())
    expected = served.expected("numeric", served.rows)
    assert outputs["probabilities"]["data"] == expected.reshape(-1).tolist()
    assert outputs["label"]["datatype"] == "BYTES"
    assert outputs["label"]["data"] == [CLASSES[i] for i in expected.argmax(axis=1)]


def test_regression_model_answers_with_prediction(served: Served, client: TestClient) -> None:
    metadata = client.get("/v2/models/amount").json()
    inputs = [
        {"name": name, "datatype": "FP32", "shape": [len(served.rows)], "data": values.tolist()}
        for name, values in served.rows[NUMERIC].items()
    ]

    response = client.post("/v2/models/amount/infer", json={"inputs": inputs})

    assert metadata["outputs"] == [{"name": "prediction", "datatype": "FP64", "shape": [-1]}]
    (prediction,) = response.json()["outputs"]
    as_fp32 = served.rows[NUMERIC].astype(np.float32).astype(np.float64)
    assert prediction["data"] == served.expected("amount", as_fp32).tolist()


def test_infer_binary_inputs_and_outputs(served: Served, client: TestClient) -> None:
    rows = served.rows
    inputs, chunks = [], []
    for name in NUMERIC:
        raw = rows[name].to_numpy(dtype="<f8").tobytes()
        inputs.append(
            {
                "name": name,
                "datatype": "FP64",
                "shape": [len(rows)],
                "parameters": {"binary_data_size": len(raw)},
            }
        )
        chunks.append(raw)
    regions = [str(v).encode() for v in rows["region"]]
    raw = b"".join(struct.pack("<I", len(r)) + r for r in regions)
    inputs.append(
        {
            "name": "region",
            "datatype": "BYTES",
            "shape": [len(rows)],
            "parameters": {"binary_data_size": len(raw)},
        }
    )
    chunks.append(raw)
    header = orjson.dumps({"inputs": inputs, "parameters": {"binary_data_output": True}})

    response = client.post(
        "/v2/models/credit/infer",
        content=header + b"".join(chunks),
        headers={"Inference-Header-Content-Length": str(len(header))},
    )

    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    size = int(response.headers["inference-header-content-length"])
    body = orjson.loads(response.content[:size])
    binary = response.content[size:]
    probabilities, _ = body["outputs"]
    n_probabilities = probabilities["parameters"]["binary_data_size"]
    expected = served.expected("credit", rows)
    np.testing.assert_array_equal(
        np.frombuffer(binary[:n_probabilities], dtype="<f8").reshape(-1, 2), expected
    )
    np.testing.assert_array_equal(
        np.frombuffer(binary[n_probabilities:], dtype="<i8"), expected.argmax(axis=1)
    )


def test_infer_returns_only_requested_outputs(served: Served, client: TestClient) -> None:
    response = client.post(
        "/v2/models/credit/infer",
        json={"inputs": column_inputs(served.rows), "outputs": [{"name": "label"}]},
    )

    assert [o["name"] for o in response.json()["outputs"]] == ["label"]


def _bad_inputs(case: str, frame: pd.DataFrame) -> dict[str, Any]:
    """A request body that breaks one rule of the protocol or of the model's inputs."""
    good = column_inputs(frame)
    n = len(frame)
    if case == "data-not-datatype":
        return {"inputs": [{**good[0], "data": ["high"] * n}, *good[1:]]}
    if case == "datatype-not-column-kind":
        return {"inputs": [*good[:3], {**good[3], "datatype": "INT64", "data": [1] * n}]}
    if case == "shape-not-data-length":
        return {"inputs": [{**good[0], "shape": [n + 1, 1]}, *good[1:]]}
    if case == "unknown-input":
        return {"inputs": [*good, {**good[0], "name": "colour"}]}
    if case == "row-counts-disagree":
        return {"inputs": [{**good[0], "shape": [n - 1], "data": good[0]["data"][1:]}, *good[1:]]}
    if case == "missing-input":
        return {"inputs": good[1:]}
    if case == "unknown-output":
        return {"inputs": good, "outputs": [{"name": "odds"}]}
    if case == "out-of-range-for-datatype":
        return {"inputs": [{**good[0], "datatype": "FP32", "data": [1e39] * n}, *good[1:]]}
    return {"inputs": []}


@pytest.mark.parametrize(
    ("case", "status", "field"),
    [
        ("data-not-datatype", 400, "inputs.income.data"),
        ("datatype-not-column-kind", 422, "inputs.region.datatype"),
        ("shape-not-data-length", 400, "inputs.income.shape"),
        ("unknown-input", 422, "inputs.colour"),
        ("row-counts-disagree", 422, "inputs"),
        ("missing-input", 422, "inputs.income"),
        ("unknown-output", 400, "outputs[0].name"),
        ("out-of-range-for-datatype", 400, "inputs.income.data"),
        ("no-inputs", 400, "inputs"),
    ],
)
def test_infer_refuses_bad_tensors_with_field_errors(
    served: Served, client: TestClient, case: str, status: int, field: str
) -> None:
    before = served.decision_count()

    response = client.post("/v2/models/credit/infer", json=_bad_inputs(case, served.rows))

    problem = assert_problem(response, status)
    assert field in [e["field"] for e in problem["errors"]], problem
    assert served.decision_count() == before
    still = client.post("/v2/models/credit/infer", json={"inputs": column_inputs(served.rows)})
    assert still.status_code == 200


@pytest.mark.parametrize(
    ("path", "body", "status"),
    [
        ("/v2/models/nope/infer", b"{}", 404),
        ("/v2/models/credit/versions/2/infer", b"{}", 404),
        ("/v2/models/credit/infer", b'{"inputs": [', 400),
        ("/v2/models/credit/infer", b"[1, 2]", 400),
        ("/v2/models/credit/infer", b" " * (MAX_BODY_BYTES + 1), 413),
    ],
    ids=["unknown-model", "wrong-version", "malformed-json", "not-an-object", "oversized"],
)
def test_infer_refuses_bad_requests_as_problems(
    served: Served, client: TestClient, path: str, body: bytes, status: int
) -> None:
    assert_problem(client.post(path, content=body), status)
    still = client.post("/v2/models/credit/infer", json={"inputs": column_inputs(served.rows)})
    assert still.status_code == 200


def test_infer_refuses_binary_size_past_the_body(served: Served, client: TestClient) -> None:
    tensor = {"name": "x", "datatype": "FP64", "shape": [2], "parameters": {"binary_data_size": 16}}
    header = orjson.dumps({"inputs": [tensor]})

    response = client.post(
        "/v2/models/numeric/infer",
        content=header + b"\x00" * 8,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )

    problem = assert_problem(response, 400)
    assert problem["errors"][0]["field"] == "inputs.x.parameters.binary_data_size"


def test_infer_refuses_infinite_binary_value(served: Served, client: TestClient) -> None:
    raw = np.array([[1.0, np.inf, 30.0]], dtype="<f8").tobytes()
    tensor = {"name": "x", "datatype": "FP64", "shape": [1, 3]}
    header = orjson.dumps({"inputs": [{**tensor, "parameters": {"binary_data_size": len(raw)}}]})

    response = client.post(
        "/v2/models/numeric/infer",
        content=header + raw,
        headers={"Inference-Header-Content-Length": str(len(header))},
    )

    problem = assert_problem(response, 422)
    assert problem["errors"][0]["field"] == "inputs[0].debt"


def test_model_metadata_unknown_version_is_404(client: TestClient) -> None:
    assert_problem(client.get("/v2/models/credit/versions/7"), 404)
    assert_problem(client.get("/v2/models/credit/versions/7/ready"), 404)


# -- end to end: the unmodified tritonclient against uvicorn -----------------------------------


@pytest.fixture
def server_url(served: Served) -> Iterator[str]:
    """`host:port` of a real uvicorn server running the app in a thread; stopped after."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(served.app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()
        assert not thread.is_alive(), "uvicorn did not stop"


def triton_inputs(frame: pd.DataFrame) -> list[Any]:
    """tritonclient inputs with its defaults: binary data, FP64 [n, 1] columns, BYTES region."""
    inputs = []
    for name in NUMERIC:
        column = frame[[name]].to_numpy(dtype=np.float64)
        tensor = triton.InferInput(name, list(column.shape), "FP64")
        tensor.set_data_from_numpy(column)
        inputs.append(tensor)
    regions = np.array([str(v) for v in frame["region"]], dtype=np.object_)
    tensor = triton.InferInput("region", [len(frame)], "BYTES")
    tensor.set_data_from_numpy(regions)
    inputs.append(tensor)
    return inputs


@pytest.mark.slow
def test_tritonclient_talks_to_bastion_unchanged(served: Served, server_url: str) -> None:
    client = triton.InferenceServerClient(url=server_url)
    headers = served.headers
    try:
        assert client.is_server_live()
        assert client.is_server_ready()
        assert client.is_model_ready("credit", headers=headers)
        assert client.is_model_ready("credit", model_version="1", headers=headers)
        metadata = client.get_model_metadata("credit", headers=headers)
        assert [i["name"] for i in metadata["inputs"]] == [*NUMERIC, "region"]

        expected = served.expected("credit", served.rows)
        outputs = [
            triton.InferRequestedOutput("probabilities", binary_data=True),
            triton.InferRequestedOutput("label", binary_data=False),
        ]
        result = client.infer(
            "credit", triton_inputs(served.rows), outputs=outputs, request_id="e2e", headers=headers
        )
        np.testing.assert_array_equal(result.as_numpy("probabilities"), expected)
        np.testing.assert_array_equal(result.as_numpy("label"), expected.argmax(axis=1))
        assert result.get_response()["id"] == "e2e"

        every = client.infer(
            "credit", triton_inputs(served.rows), model_version="1", headers=headers
        )
        np.testing.assert_array_equal(every.as_numpy("probabilities"), expected)

        matrix = served.rows[NUMERIC].to_numpy(dtype=np.float32)
        tensor = triton.InferInput("input__0", list(matrix.shape), "FP32")
        tensor.set_data_from_numpy(matrix)
        labels = client.infer("numeric", [tensor], headers=headers).as_numpy("label")
        expected_labels = served.expected("numeric", pd.DataFrame(matrix, columns=NUMERIC))
        assert labels.tolist() == [CLASSES[i].encode() for i in expected_labels.argmax(axis=1)]

        with pytest.raises(InferenceServerException) as refused:
            client.infer("no-such-deployment", triton_inputs(served.rows), headers=headers)
        assert refused.value.status() == "404"
        with pytest.raises(InferenceServerException) as unauthenticated:
            client.infer("credit", triton_inputs(served.rows))
        assert unauthenticated.value.status() == "401"
        assert client.is_server_ready()
    finally:
        client.close()
