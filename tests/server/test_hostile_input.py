"""Hostile and malformed requests get a clear 4xx problem document, never a 5xx, and the
server keeps serving good requests after each one."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from bastion.server.problems import PROBLEM_CONTENT_TYPE
from tests.credentials import bearer, create_key
from tests.server.conftest import MAX_BODY_BYTES, Served

DECIDE = "/v1/deployments/credit/decide"
INFER = "/v2/models/numeric/infer"
GOOD_FEATURES = {"income": 50.0, "debt": 20.0, "age": 40.0, "region": "north"}
GOOD_INFER = {
    "inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [50.0, 20.0, 40.0]}]
}


@pytest.fixture
def client(served: Served) -> Iterator[TestClient]:
    admin = create_key(served.settings.resolved_database_url, "admin")
    with TestClient(served.app(), headers=bearer(admin)) as test_client:
        yield test_client


def assert_refused(response: Any, *statuses: int) -> dict[str, Any]:
    """A 4xx problem document with one of `statuses`."""
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    problem: dict[str, Any] = response.json()
    assert problem["status"] == response.status_code
    assert problem["detail"]
    return problem


def assert_still_serving(client: TestClient) -> None:
    assert client.post(DECIDE, json={"features": GOOD_FEATURES}).status_code == 200
    assert client.post(INFER, json=GOOD_INFER).status_code == 200


JSON = {"content-type": "application/json"}


@pytest.mark.parametrize("path", [DECIDE, INFER])
def test_oversized_body_is_413(client: TestClient, path: str) -> None:
    body = b'{"features": "' + b"x" * (MAX_BODY_BYTES + 1) + b'"}'

    assert_refused(client.post(path, content=body, headers=JSON), 413)
    assert_still_serving(client)


@pytest.mark.parametrize("path", [DECIDE, INFER])
def test_oversized_streamed_body_without_length_is_413(client: TestClient, path: str) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"features": "'
        for _ in range(MAX_BODY_BYTES // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    assert_refused(client.post(path, content=chunks(), headers=JSON), 413)
    assert_still_serving(client)


@pytest.mark.parametrize("path", [DECIDE, INFER])
@pytest.mark.parametrize("depth", [10_000, 60_000])
def test_deeply_nested_json_is_400(client: TestClient, path: str, depth: int) -> None:
    assert_refused(client.post(path, content=b"[" * depth, headers=JSON), 400, 413)
    assert_still_serving(client)


def test_nesting_within_the_parser_limit_is_a_contract_violation(client: TestClient) -> None:
    nested: Any = 1.0
    for _ in range(500):
        nested = [nested]
    features = {**GOOD_FEATURES, "income": nested}

    assert_refused(client.post(DECIDE, json={"features": features}), 422)
    assert_still_serving(client)


def test_deeply_nested_tensor_data_is_refused(client: TestClient) -> None:
    data: Any = 1.0
    for _ in range(500):
        data = [data]
    body = {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": data}]}

    assert_refused(client.post(INFER, json=body), 400, 422)
    assert_still_serving(client)


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity", b"1e999", b"-1e999"])
def test_nan_and_infinity_literals_are_400(client: TestClient, literal: bytes) -> None:
    decide = b'{"features": {"income": ' + literal + b', "debt": 1, "age": 30, "region": "north"}}'
    infer = (
        b'{"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": ['
        + literal
        + b", 1, 2]}]}"
    )

    assert_refused(client.post(DECIDE, content=decide, headers=JSON), 400, 422)
    assert_refused(client.post(INFER, content=infer, headers=JSON), 400, 422)
    assert_still_serving(client)


def test_integers_beyond_64_bits_are_judged_as_out_of_range_numbers(client: TestClient) -> None:
    decide = (
        b'{"features": {"income": 1' + b"0" * 40 + b', "debt": 1, "age": 30, "region": "north"}}'
    )

    response = client.post(DECIDE, content=decide, headers=JSON)

    assert response.status_code == 200, response.text  # range violations are flagged by default
    assert response.json()["guard"]["ood"]["flagged"] is True
    assert_still_serving(client)


@pytest.mark.parametrize("field", ["region", "income", "unknown"])
def test_huge_strings_in_features_are_refused(client: TestClient, field: str) -> None:
    features = {**GOOD_FEATURES, field: "é" * (MAX_BODY_BYTES // 4)}

    response = client.post(DECIDE, json={"features": features})

    if field == "unknown":  # ignored by the default contract
        assert response.status_code == 200
    else:
        assert_refused(response, 413, 422)
    assert_still_serving(client)


def test_huge_string_in_subject_id_is_served_or_refused(client: TestClient) -> None:
    response = client.post(
        DECIDE, json={"subject_id": "s" * (MAX_BODY_BYTES // 2), "features": GOOD_FEATURES}
    )

    assert response.status_code < 500
    assert_still_serving(client)


def test_huge_bytes_tensor_is_refused(client: TestClient) -> None:
    body = {"inputs": [{"name": "x", "datatype": "BYTES", "shape": [1], "data": ["y" * 30_000]}]}

    assert_refused(client.post(INFER, json=body), 400, 422)
    assert_still_serving(client)


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", b"features=1"),
        ("application/x-www-form-urlencoded", b"features=1&income=2"),
        (
            "multipart/form-data; boundary=x",
            b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--\r\n",
        ),
        ("application/octet-stream", bytes(range(256))),
        ("application/xml", b"<features/>"),
    ],
)
@pytest.mark.parametrize("path", [DECIDE, INFER])
def test_wrong_content_types_are_4xx(
    client: TestClient, path: str, content_type: str, body: bytes
) -> None:
    assert_refused(
        client.post(path, content=body, headers={"content-type": content_type}), 400, 415
    )
    assert_still_serving(client)


def test_decide_refuses_json_sent_as_text_plain(client: TestClient) -> None:
    body = b'{"features": {"income": 50.0, "debt": 20.0, "age": 40.0, "region": "north"}}'

    assert_refused(client.post(DECIDE, content=body, headers={"content-type": "text/plain"}), 415)
    assert_still_serving(client)


def test_binary_blob_without_the_inference_header_is_400(client: TestClient) -> None:
    blob = bytes(range(256)) * 8

    response = client.post(
        INFER, content=blob, headers={"content-type": "application/octet-stream"}
    )

    assert_refused(response, 400)
    assert_still_serving(client)


@pytest.mark.parametrize("header", ["-1", "1e3", "99999999999999999999", "٣", " ", "0x10"])
def test_bad_inference_header_lengths_are_400(client: TestClient, header: str) -> None:
    response = client.post(
        INFER,
        content=b'{"inputs": []}',
        headers={b"inference-header-content-length": header.encode()},
    )

    assert_refused(response, 400)
    assert_still_serving(client)


@pytest.mark.parametrize("body", [b"\xff\xfe{}", b'{"features": "\xc3\x28"}', b"\xed\xa0\x80"])
@pytest.mark.parametrize("path", [DECIDE, INFER])
def test_invalid_utf8_is_400(client: TestClient, path: str, body: bytes) -> None:
    assert_refused(client.post(path, content=body, headers=JSON), 400)
    assert_still_serving(client)


@pytest.mark.parametrize("path", [DECIDE, INFER])
def test_empty_body_is_400(client: TestClient, path: str) -> None:
    assert_refused(client.post(path, content=b"", headers=JSON), 400)
    assert_refused(client.post(path, content=b"   ", headers=JSON), 400)
    assert_still_serving(client)


@pytest.mark.parametrize("body", [b"[]", b"[{}]", b'"features"', b"null", b"42", b"true"])
@pytest.mark.parametrize("path", [DECIDE, INFER])
def test_json_that_is_not_an_object_is_400(client: TestClient, path: str, body: bytes) -> None:
    assert_refused(client.post(path, content=body, headers=JSON), 400)
    assert_still_serving(client)


@pytest.mark.parametrize(
    "body",
    [
        {"features": []},
        {"features": None},
        {"features": "x"},
        {"instances": {}},
        {"instances": [[]]},
        {"instances": [None, 1]},
        {"features": GOOD_FEATURES, "subject_id": {"a": 1}},
        {"features": {"\u0000": 1, "\ud7ff": 2, "\U0010ffff": 3, **GOOD_FEATURES}},
    ],
)
def test_wrongly_shaped_decide_bodies_are_4xx(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post(DECIDE, json=body)

    assert response.status_code < 500, response.text
    assert_still_serving(client)


@pytest.mark.parametrize(
    "body",
    [
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [10**30, 3], "data": [1.0]}]},
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [-1, 3], "data": [1.0]}]},
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [0, 3], "data": []}]},
        {"inputs": [{"name": "x", "datatype": "FP16", "shape": [1, 3], "data": [1e300, 1, 1]}]},
        {"inputs": [{"name": "x", "datatype": "INT64", "shape": [1, 3], "data": [2**63, 1, 1]}]},
        {"inputs": [{"name": "x", "datatype": "FP64", "shape": [1, 3], "data": [{}, [], "a"]}]},
        {
            "inputs": [
                {
                    "name": "x",
                    "datatype": "FP64",
                    "shape": [1, 3],
                    "parameters": {"binary_data_size": 10**12},
                }
            ]
        },
        {"inputs": GOOD_INFER["inputs"], "outputs": [{"name": "label", "parameters": []}]},
        {"inputs": GOOD_INFER["inputs"], "outputs": [{"name": {"a": 1}}]},
        {"inputs": GOOD_INFER["inputs"], "parameters": {"binary_data_output": "yes"}},
        {"inputs": GOOD_INFER["inputs"], "id": 5},
    ],
)
def test_wrongly_shaped_tensors_are_4xx(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post(INFER, json=body)

    assert response.status_code < 500, response.text
    assert_still_serving(client)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/decisions/%F0%9F%92%A9",
        "/v1/decisions/%00",
        "/v1/decisions/%FF%FE",
        "/v1/decisions/" + "a" * 5000,
        "/v1/decisions/%E2%80%AE%E2%80%8B",
        "/v1/subjects/%00",
        "/v1/subjects/%F0%9F%92%A9%CC%81",
        "/v1/subjects/%FF",
        "/v2/models/%F0%9F%92%A9",
        "/v2/models/%00/ready",
        "/v2/models/numeric/versions/%C2%B9",
        "/v2/models/numeric/versions/%00/ready",
    ],
)
def test_unicode_edge_cases_in_path_params_are_not_server_errors(
    client: TestClient, path: str
) -> None:
    response = client.get(path)

    assert response.status_code < 500, response.text
    if response.status_code >= 400:
        assert_refused(response, 404)
    assert_still_serving(client)


@pytest.mark.parametrize("path", ["/v2/models/%F0%9F%92%A9/infer", "/v1/deployments/%00/decide"])
def test_unicode_model_names_on_post_are_404(client: TestClient, path: str) -> None:
    assert_refused(client.post(path, json={"features": GOOD_FEATURES}), 404)
    assert_still_serving(client)
