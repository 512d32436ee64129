"""`/v1` JSON routes: decisions and their explanations."""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.errors import FieldError, InvalidInput, NotFound
from bastion.server.body import read_json_object
from bastion.serving.service import ServingService


def json_response(content: Any, status_code: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status_code, media_type="application/json")


def _subject_ids(payload: dict[str, Any], instances: list[Any]) -> list[str | None]:
    """One subject id per instance: from each instance's envelope or the request's."""
    default = payload.get("subject_id")
    if default is not None and not isinstance(default, str | int):
        raise InvalidInput(
            "subject_id must be a string", errors=[FieldError("subject_id", "must be a string")]
        )
    return [None if default is None else str(default)] * len(instances)


async def decide(request: Request) -> Response:
    """Score one instance (`features`) or several (`instances`) and decide an outcome."""
    started = time.perf_counter()
    service: ServingService = request.app.state.service
    deployment = service.deployment(request.path_params["deployment"])
    payload = await read_json_object(request, service.spec.server.max_body_bytes)
    if "features" in payload and "instances" in payload:
        raise InvalidInput("send either 'features' (one instance) or 'instances', not both")
    if "features" in payload:
        raw, prefix, single = [payload["features"]], "features", True
    elif "instances" in payload:
        raw, prefix, single = payload["instances"], "instances", False
        if not isinstance(raw, list) or not raw:
            raise InvalidInput(
                "instances must be a non-empty list of feature objects",
                errors=[FieldError("instances", "must be a non-empty list")],
            )
        if len(raw) > service.spec.server.max_instances:
            raise InvalidInput(
                f"at most {service.spec.server.max_instances} instances per request, got {len(raw)}"
            )
    else:
        raise InvalidInput(
            "the body needs 'features' (an object) or 'instances' (a list of objects)",
            errors=[FieldError("features", "is required")],
        )
    batch = deployment.guard.check(raw, prefix=prefix)
    decisions = await service.decide(deployment, batch, _subject_ids(payload, raw), started=started)
    if single:
        return json_response(decisions[0].as_response())
    return json_response({"decisions": [d.as_response() for d in decisions]})


def _decision_id(request: Request) -> str:
    decision_id: str = request.path_params["decision_id"]
    try:
        uuid.UUID(decision_id)
    except ValueError:
        # Decision ids are UUIDs; anything else (a NUL byte, say, which PostgreSQL refuses
        # in a query) is not looked up at all.
        raise NotFound(f"no decision with id {decision_id!r}") from None
    return decision_id


async def get_decision(request: Request) -> Response:
    service: ServingService = request.app.state.service
    return json_response(await service.decision(_decision_id(request)))


async def get_explanation(request: Request) -> Response:
    """The decision's feature contributions and reason codes: stored, or computed now with
    the model version the decision used."""
    service: ServingService = request.app.state.service
    return json_response(await service.explanation(_decision_id(request)))


async def metrics(request: Request) -> Response:
    service: ServingService = request.app.state.service
    return Response(service.metrics.render(), media_type=service.metrics.content_type)


routes = [
    Route("/v1/deployments/{deployment}/decide", decide, methods=["POST"]),
    Route("/v1/decisions/{decision_id}", get_decision, methods=["GET"]),
    Route("/v1/decisions/{decision_id}/explanation", get_explanation, methods=["GET"]),
    Route("/metrics", metrics, methods=["GET"]),
]
