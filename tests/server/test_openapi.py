"""`GET /openapi.json`, and schemathesis fuzzing every operation of the served document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.python import asgi
from schemathesis.schemas import APIOperation
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.specs.openapi.schemas import OpenApiSchema
from starlette.routing import Route
from starlette.testclient import TestClient

from bastion.server.openapi import OPENAPI_PATH, UNDOCUMENTED_PREFIXES
from bastion.server.problems import PROBLEM_CONTENT_TYPE
from tests.credentials import bearer, create_key
from tests.server.conftest import Served

#: examples per operation: bounded, so the whole fuzzing run stays well under a minute
MAX_EXAMPLES = 40
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@pytest.fixture
def admin_headers(served: Served) -> dict[str, str]:
    return bearer(create_key(served.settings.resolved_database_url, "admin"))


@pytest.fixture
def document(served: Served, admin_headers: dict[str, str]) -> dict[str, Any]:
    with TestClient(served.app(), headers=admin_headers) as client:
        response = client.get(OPENAPI_PATH)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def test_openapi_document_is_valid_openapi_3_1(document: dict[str, Any]) -> None:
    assert document["openapi"] == "3.1.0"

    schemathesis.openapi.from_dict(document).validate()  # the OpenAPI 3.1 meta-schema


def test_openapi_document_lists_every_route_and_method(
    served: Served, document: dict[str, Any]
) -> None:
    app_operations = {
        (route.path, method.lower())
        for route in served.app().routes
        if isinstance(route, Route) and not route.path.startswith(UNDOCUMENTED_PREFIXES)
        for method in route.methods or ()
        if method != "HEAD"
    }

    documented = {(path, method) for path, item in document["paths"].items() for method in item}

    assert documented == app_operations


def test_openapi_marks_only_health_as_open(document: dict[str, Any]) -> None:
    open_operations = {
        path
        for path, item in document["paths"].items()
        for operation in item.values()
        if operation.get("security") == []
    }

    assert open_operations == {"/v2/health/live", "/v2/health/ready"}
    assert document["security"] == [{"bearer": []}]


def test_openapi_decide_body_carries_the_input_signature(document: dict[str, Any]) -> None:
    features = document["components"]["schemas"]["Features"]

    by_title = {variant["title"]: variant for variant in features["anyOf"]}

    assert by_title["credit"]["required"] == ["income", "debt", "age", "region"]
    assert by_title["credit"]["properties"]["region"] == {
        "enum": ["north", "south", "east", "west"]
    }
    assert by_title["amount"]["properties"]["income"] == {"type": "number"}


def test_openapi_errors_are_problem_documents(document: dict[str, Any]) -> None:
    infer = document["paths"]["/v2/models/{model}/infer"]["post"]["responses"]

    assert infer["422"] == {"$ref": "#/components/responses/Problem"}
    problem = document["components"]["responses"]["Problem"]["content"]
    assert list(problem) == [PROBLEM_CONTENT_TYPE]


def test_openapi_is_readable_by_any_valid_key(served: Served) -> None:
    with TestClient(served.app()) as client:
        assert client.get(OPENAPI_PATH, headers=served.headers).status_code == 200
        assert client.get(OPENAPI_PATH).status_code == 401


@pytest.fixture
def api_schema(served: Served, admin_headers: dict[str, str]) -> Iterator[OpenApiSchema]:
    """The served document, loaded by schemathesis from the running ASGI app."""
    schema = schemathesis.openapi.from_asgi(OPENAPI_PATH, served.app(), headers=dict(admin_headers))
    try:
        yield schema
    finally:
        asgi.shutdown_lifespans()  # stop the app while its database still exists


FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,  # the same examples on every run
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)


def _fuzz(
    operation: APIOperation[Any, Any, Any, Any],
    mode: GenerationMode,
    headers: dict[str, str],
    calls: list[int],
) -> None:
    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: schemathesis.Case[Any]) -> None:
        response = case.call(headers=dict(headers))
        calls.append(response.status_code)
        case.validate_response(response, checks=CHECKS, headers=dict(headers))
        if 400 <= response.status_code < 500:
            assert response.headers["content-type"] == [PROBLEM_CONTENT_TYPE], response.text

    run()


def test_fuzzed_requests_get_no_server_error(
    api_schema: OpenApiSchema, admin_headers: dict[str, str]
) -> None:
    statuses: dict[str, list[int]] = {}
    for result in api_schema.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        # negative data (invalid against the schema) exists only where there is input
        has_input = "{" in operation.path or operation.method.upper() == "POST"
        modes = [GenerationMode.POSITIVE, *([GenerationMode.NEGATIVE] if has_input else [])]
        for mode in modes:
            _fuzz(operation, mode, admin_headers, statuses.setdefault(operation.label, []))

    assert len(statuses) == len(list(api_schema.get_all_operations()))
    assert all(code < 500 for codes in statuses.values() for code in codes)
