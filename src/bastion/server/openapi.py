"""`GET /openapi.json`: an OpenAPI 3.1 document of every route, built from the route table.

Each Starlette route contributes one operation per method, described by `OPERATIONS` (keyed
by the route template without ``/versions/{version}``, so the versioned OIP routes share
their unversioned twin's description). Decide bodies carry each deployment's input
signature as JSON Schema properties; OIP bodies follow the KServe v2 REST spec; every error
is an ``application/problem+json`` document. The document is built once per app, after
start-up (when the deployments' signatures are known), and cached.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

import bastion
from bastion.registry.signature import ColumnSignature
from bastion.server.auth import OPEN_PATHS
from bastion.server.oip import column_datatype
from bastion.server.openapi_schemas import (
    BINARY,
    BINARY_BODY,
    DECISION,
    EMPTY_BODY,
    EXPLANATION,
    FEEDBACK,
    FEEDBACK_BODY,
    INFER_REQUEST,
    INFER_RESPONSE,
    INFERENCE_HEADER_PARAMETER,
    MODEL_META,
    MONITOR_ALERTS,
    MONITOR_WINDOWS,
    OBJECT,
    PROBLEM,
    REQUEST_INPUT,
    RESPONSE_OUTPUT,
    REVIEW_CLAIM_BODY,
    REVIEW_NOTES_BODY,
    REVIEW_RESOLVE_BODY,
    REVIEW_STATS,
    REVIEW_TASK_LIST,
    REVIEW_TASK_VIEW,
    SERVER_META,
    Schema,
)
from bastion.server.problems import PROBLEM_CONTENT_TYPE
from bastion.serving.service import ServingService

OPENAPI_PATH = "/openapi.json"
JSON = "application/json"
#: the review console's HTML pages are for people in a browser, not part of the API
UNDOCUMENTED_PREFIXES = ("/console",)


@dataclass(frozen=True)
class Operation:
    """What the route table cannot say about one operation."""

    summary: str
    response: Schema
    request: Schema | None = None
    #: error statuses besides 401/403 (auth) and 404 (unknown path parameter values)
    errors: Sequence[int] = ()
    response_type: str = JSON
    #: also sent and answered as a JSON header followed by binary tensor data
    binary: bool = False
    tags: Sequence[str] = field(default=("v1",))
    #: False where an empty body means ``{}``
    body_required: bool = True
    #: the success status
    status: int = 200


OIP = ("v2",)
REVIEW = ("review",)
BODY_ERRORS = (400, 413, 415, 422)


def _review_action(summary: str, body: Schema, errors: Sequence[int] = (409,)) -> Operation:
    return Operation(
        summary,
        REVIEW_TASK_VIEW,
        request=body,
        errors=(*BODY_ERRORS, *errors),
        tags=REVIEW,
        body_required=body is not REVIEW_RESOLVE_BODY,
    )


#: by route template (without `/versions/{version}`) and method
OPERATIONS: dict[tuple[str, str], Operation] = {
    ("/v1/deployments/{deployment}/decide", "POST"): Operation(
        "Score one instance (features) or several (instances) and decide an outcome",
        {"oneOf": [DECISION, {"type": "object", "required": ["decisions"]}]},
        request={"$ref": "#/components/schemas/DecideRequest"},
        errors=(*BODY_ERRORS, 429, 502, 503, 504),
    ),
    ("/v1/decisions/{decision_id}", "GET"): Operation("A stored decision record", OBJECT),
    ("/v1/decisions/{decision_id}/explanation", "GET"): Operation(
        "The decision's feature contributions and reason codes: stored, or computed now with "
        "the model version the decision used",
        EXPLANATION,
        errors=(409, 422),
    ),
    ("/v1/decisions/{decision_id}/feedback", "POST"): Operation(
        "Record a late label for a decision (history is kept; the latest observation wins)",
        FEEDBACK,
        request=FEEDBACK_BODY,
        errors=BODY_ERRORS,
        status=201,
    ),
    ("/v1/deployments/{deployment}/monitor/windows", "GET"): Operation(
        "Stored drift and performance windows, newest first (query: limit)",
        MONITOR_WINDOWS,
        errors=(422,),
        tags=("monitor",),
    ),
    ("/v1/deployments/{deployment}/monitor/alerts", "GET"): Operation(
        "Each alert rule's state and the latest state changes (query: limit)",
        MONITOR_ALERTS,
        errors=(422,),
        tags=("monitor",),
    ),
    ("/v1/review/tasks", "GET"): Operation(
        "Review tasks by priority, then age (query: deployment, status, overdue, limit)",
        REVIEW_TASK_LIST,
        errors=(422,),
        tags=REVIEW,
    ),
    ("/v1/review/tasks/claim", "POST"): Operation(
        "Claim the most urgent waiting task (of one deployment, if given); 404 when none",
        REVIEW_TASK_VIEW,
        request=REVIEW_CLAIM_BODY,
        errors=(*BODY_ERRORS, 404, 409),
        tags=REVIEW,
        body_required=False,
    ),
    ("/v1/review/tasks/{task_id}", "GET"): Operation(
        "A review task with its decision (redacted inputs, policy, explanation)",
        REVIEW_TASK_VIEW,
        tags=REVIEW,
    ),
    ("/v1/review/tasks/{task_id}/claim", "POST"): _review_action(
        "Claim a task (a lease); 409 when another reviewer holds it", EMPTY_BODY
    ),
    ("/v1/review/tasks/{task_id}/resolve", "POST"): _review_action(
        "Resolve a claimed task with a verdict (recorded as feedback, source review)",
        REVIEW_RESOLVE_BODY,
    ),
    ("/v1/review/tasks/{task_id}/release", "POST"): _review_action(
        "Give a claimed task back to the queue", EMPTY_BODY
    ),
    ("/v1/review/tasks/{task_id}/escalate", "POST"): _review_action(
        "Escalate a claimed task to a senior reviewer", REVIEW_NOTES_BODY
    ),
    ("/v1/review/stats", "GET"): Operation(
        "Queue depth, oldest age, overdue tasks and counts by status (query: deployment)",
        REVIEW_STATS,
        errors=(422,),
        tags=REVIEW,
    ),
    ("/v1/subjects/{subject_id}", "GET"): Operation(
        "Export every stored record of a data subject", OBJECT
    ),
    ("/v1/subjects/{subject_id}", "DELETE"): Operation(
        "Erase every stored record of a data subject", OBJECT
    ),
    ("/metrics", "GET"): Operation(
        "Prometheus metrics", {"type": "string"}, response_type="text/plain", tags=("metrics",)
    ),
    (OPENAPI_PATH, "GET"): Operation("This document", OBJECT, tags=("meta",)),
    ("/v2", "GET"): Operation("OIP server metadata", SERVER_META, tags=OIP),
    ("/v2/health/live", "GET"): Operation(
        "OIP liveness", {"type": "object", "required": ["live"]}, tags=OIP
    ),
    ("/v2/health/ready", "GET"): Operation(
        "OIP readiness", {"type": "object", "required": ["ready"]}, errors=(503,), tags=OIP
    ),
    ("/v2/models/{model}", "GET"): Operation("OIP model metadata", MODEL_META, tags=OIP),
    ("/v2/models/{model}/ready", "GET"): Operation(
        "OIP model readiness",
        {"type": "object", "required": ["name", "ready"]},
        errors=(503,),
        tags=OIP,
    ),
    ("/v2/models/{model}/infer", "POST"): Operation(
        "OIP inference: JSON tensors, or a JSON header followed by binary tensor data",
        {"$ref": "#/components/schemas/InferResponse"},
        request={"$ref": "#/components/schemas/InferRequest"},
        errors=(*BODY_ERRORS, 429, 502, 503, 504),
        tags=OIP,
        binary=True,
    ),
}


def _column_schema(column: ColumnSignature) -> Schema:
    schema: Schema
    if column.kind == "numeric":
        schema = {"type": "number"}
    elif column.kind == "boolean":
        schema = {"type": "boolean"}
    elif column.kind == "categorical" and column.categories:
        schema = {"enum": list(column.categories)}
    else:
        schema = {"type": "string"}
    if column.nullable:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


def features_schema(service: ServingService) -> Schema:
    """One instance: the input signature of any served deployment, or a generic object."""
    variants = [
        {
            "type": "object",
            "title": name,
            "required": live.version.input_signature.names,
            "properties": {c.name: _column_schema(c) for c in live.version.input_signature.columns},
        }
        for name, live in sorted(service.deployments.items())
    ]
    if not variants:
        return {"type": "object"}
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def _example_value(column: ColumnSignature) -> Any:
    if column.kind == "numeric":
        return column.min if column.min is not None else 0.0
    if column.kind == "boolean":
        return True
    if column.categories:
        return column.categories[0]
    return "text"


def examples(service: ServingService) -> dict[str, Schema]:
    """A valid decide and infer body for the first deployment (none without deployments)."""
    if not service.deployments:
        return {}
    live = service.deployments[min(service.deployments)]
    columns = live.version.input_signature.columns
    return {
        "DecideRequest": {"features": {c.name: _example_value(c) for c in columns}},
        "InferRequest": {
            "inputs": [
                {
                    "name": c.name,
                    "datatype": column_datatype(c),
                    "shape": [1],
                    "data": [_example_value(c)],
                }
                for c in columns
            ]
        },
    }


def _parameter(name: str, service: ServingService) -> Schema:
    schema: Schema = {"type": "string"}
    if name in ("deployment", "model") and service.deployments:
        schema = {"type": "string", "enum": sorted(service.deployments)}
    elif name == "version" and service.deployments:
        versions = {str(live.version.version) for live in service.deployments.values()}
        schema = {"type": "string", "enum": sorted(versions)}
    return {"name": name, "in": "path", "required": True, "schema": schema}


def _operation(
    path: str, method: str, service: ServingService, params: list[str], samples: dict[str, Schema]
) -> Schema:
    spec = OPERATIONS.get((path.replace("/versions/{version}", ""), method))
    if spec is None:
        spec = Operation(f"{method} {path}", OBJECT, tags=("other",))
    statuses = [*spec.errors]
    if path not in OPEN_PATHS:
        statuses += [401, 403]
    if params:
        statuses.append(404)
    content = {"schema": spec.response}
    operation: Schema = {
        "summary": spec.summary,
        "operationId": f"{method.lower()}{path}".replace("/", "_")
        .replace("{", "")
        .replace("}", ""),
        "tags": list(spec.tags),
        "parameters": [_parameter(p, service) for p in params],
        "responses": {
            str(spec.status): {
                "description": "Created" if spec.status == 201 else "OK",
                "content": {spec.response_type: content},
            },
            **{
                str(status): {"$ref": "#/components/responses/Problem"}
                for status in sorted(set(statuses))
            },
        },
    }
    if spec.request is not None:
        media: Schema = {"schema": spec.request}
        sample = samples.get(str(spec.request.get("$ref", "")).rsplit("/", 1)[-1])
        if sample is not None:
            media["example"] = sample
        operation["requestBody"] = {"required": spec.body_required, "content": {JSON: media}}
    if spec.binary:
        operation["requestBody"]["content"][BINARY] = {"schema": BINARY_BODY}
        operation["responses"]["200"]["content"][BINARY] = {"schema": BINARY_BODY}
        operation["parameters"].append(INFERENCE_HEADER_PARAMETER)
    if path in OPEN_PATHS:
        operation["security"] = []
    return operation


def build_document(routes: Sequence[BaseRoute], service: ServingService) -> Schema:
    """The OpenAPI 3.1 document of `routes`, as served by `service`."""
    paths: dict[str, Schema] = {}
    samples = examples(service)
    for route in routes:
        if not isinstance(route, Route) or route.path.startswith(UNDOCUMENTED_PREFIXES):
            continue
        params = list(route.param_convertors)
        item = paths.setdefault(route.path, {})
        for method in sorted(route.methods or ()):
            if method == "HEAD":
                continue
            item[method.lower()] = _operation(route.path, method, service, params, samples)
    features = features_schema(service)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Bastion",
            "version": bastion.__version__,
            "description": "Decisions (/v1) and the Open Inference Protocol v2 (/v2).",
        },
        "paths": paths,
        "security": [{"bearer": []}],
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": PROBLEM,
                "Features": features,
                "DecideRequest": {
                    "type": "object",
                    "properties": {
                        "subject_id": {"type": "string"},
                        "features": {"$ref": "#/components/schemas/Features"},
                        "instances": {
                            "type": "array",
                            "minItems": 1,
                            "items": {"$ref": "#/components/schemas/Features"},
                        },
                    },
                    "oneOf": [{"required": ["features"]}, {"required": ["instances"]}],
                },
                "RequestInput": REQUEST_INPUT,
                "ResponseOutput": RESPONSE_OUTPUT,
                "InferRequest": INFER_REQUEST,
                "InferResponse": INFER_RESPONSE,
            },
            "responses": {
                "Problem": {
                    "description": "An error, as an RFC 9457 problem document",
                    "content": {
                        PROBLEM_CONTENT_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}
                    },
                }
            },
        },
    }


async def openapi_document(request: Request) -> Response:
    """The app's OpenAPI document, built on first use (after start-up) and cached."""
    cached: bytes | None = getattr(request.app.state, "openapi", None)
    if cached is None:
        document = build_document(request.app.routes, request.app.state.service)
        cached = orjson.dumps(document)
        if request.app.state.service.ready:
            request.app.state.openapi = cached
    return Response(cached, media_type=JSON)


routes = [Route(OPENAPI_PATH, openapi_document, methods=["GET"])]
