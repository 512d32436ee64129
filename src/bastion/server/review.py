"""`/v1/review` routes: the human review queue (list, claim, resolve, release, escalate).

Keys with the ``review`` (or ``admin``) role. The reviewer is the calling key's id, or
``anonymous`` in insecure mode, so a lease belongs to a key. The routes only translate:
bodies and query strings are checked here (unknown fields and wrong types are 422), the
work happens in `bastion.review.ReviewQueue` on a worker thread.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.errors import FieldError, InvalidInput, NotFound
from bastion.review import QueueStats, ReviewQueue
from bastion.server.body import parse_json, read_body, require_json
from bastion.server.v1 import json_response
from bastion.serving.service import ServingService

T = TypeVar("T")

ANONYMOUS = "anonymous"
_LIST_PARAMS = ("deployment", "status", "overdue", "limit")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


def _queue(request: Request) -> ReviewQueue:
    queue: ReviewQueue = request.app.state.service.review
    return queue


def _reviewer(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    return principal.key_id if principal is not None else ANONYMOUS


async def _run(call: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, call)


def _task_id(request: Request) -> str:
    task_id: str = request.path_params["task_id"]
    try:
        uuid.UUID(task_id)
    except ValueError:
        # Task ids are UUIDs; anything else is not looked up at all.
        raise NotFound(f"no review task with id {task_id!r}") from None
    return task_id


async def _body(request: Request, fields: dict[str, type]) -> dict[str, Any]:
    """The JSON object body (an empty body reads as ``{}``), holding only `fields`, each
    of its type or null."""
    service: ServingService = request.app.state.service
    require_json(request)
    raw = await read_body(request, service.spec.server.max_body_bytes)
    payload = parse_json(raw) if raw.strip() else {}
    if not isinstance(payload, dict):
        raise InvalidInput(f"the body must be a JSON object, got {type(payload).__name__}")
    errors = [
        FieldError(name, "is not a known field", expected=", ".join(fields) or "no fields")
        for name in payload
        if name not in fields
    ]
    errors += [
        FieldError(name, f"must be a {kind.__name__}", expected=kind.__name__)
        for name, kind in fields.items()
        if payload.get(name) is not None and not isinstance(payload[name], kind)
    ]
    if errors:
        summary = "; ".join(f"{e.field} {e.message}" for e in errors)
        raise InvalidInput(f"invalid request body: {summary}", errors=errors)
    return payload


def _query(request: Request) -> dict[str, Any]:
    params = request.query_params
    unknown = [name for name in params if name not in _LIST_PARAMS]
    if unknown:
        raise InvalidInput(
            f"unknown query parameter(s): {', '.join(unknown)}; allowed: {', '.join(_LIST_PARAMS)}",
            errors=[FieldError(name, "is not a known query parameter") for name in unknown],
        )
    overdue = params.get("overdue", "false").lower()
    if overdue not in _BOOLEANS:
        raise InvalidInput(
            f"overdue must be true or false, got {params['overdue']!r}",
            errors=[FieldError("overdue", "must be true or false", expected="true, false")],
        )
    limit = params.get("limit", "50")
    if not limit.isdigit():
        raise InvalidInput(
            f"limit must be a whole number, got {limit!r}",
            errors=[FieldError("limit", "must be a whole number", expected="1 to 500")],
        )
    return {
        "deployment": params.get("deployment") or None,
        "status": params.get("status") or None,
        "overdue": _BOOLEANS[overdue],
        "limit": int(limit),
    }


async def list_tasks(request: Request) -> Response:
    """The queue: unresolved tasks by priority, then age (or those of one `status`)."""
    query = _query(request)
    queue = _queue(request)
    tasks = await _run(lambda: queue.list(**query))
    return json_response({"tasks": [task.to_dict() for task in tasks]})


async def claim_next(request: Request) -> Response:
    """Claim the most urgent task (of `deployment`, if given); 404 when none is waiting."""
    body = await _body(request, {"deployment": str})
    queue, reviewer, deployment = _queue(request), _reviewer(request), body.get("deployment")
    view = await _run(lambda: queue.claim_next(reviewer, deployment))
    if view is None:
        where = f" for deployment {deployment}" if deployment else ""
        raise NotFound(f"no review task is waiting{where}")
    return json_response(view.to_dict())


async def get_task(request: Request) -> Response:
    task_id, queue = _task_id(request), _queue(request)
    view = await _run(lambda: queue.get(task_id))
    return json_response(view.to_dict())


async def claim_task(request: Request) -> Response:
    task_id, queue, reviewer = _task_id(request), _queue(request), _reviewer(request)
    await _body(request, {})
    view = await _run(lambda: queue.claim(task_id, reviewer))
    return json_response(view.to_dict())


async def resolve_task(request: Request) -> Response:
    """Settle a claimed task: ``{"verdict": ..., "notes": ...}``; the verdict becomes feedback."""
    task_id, queue, reviewer = _task_id(request), _queue(request), _reviewer(request)
    body = await _body(request, {"verdict": str, "notes": str})
    verdict = body.get("verdict")
    if verdict is None:
        raise InvalidInput(
            "the body needs a verdict", errors=[FieldError("verdict", "is required")]
        )
    notes = body.get("notes")
    view = await _run(lambda: queue.resolve(task_id, reviewer, verdict, notes))
    return json_response(view.to_dict())


async def release_task(request: Request) -> Response:
    task_id, queue, reviewer = _task_id(request), _queue(request), _reviewer(request)
    await _body(request, {})
    view = await _run(lambda: queue.release(task_id, reviewer))
    return json_response(view.to_dict())


async def escalate_task(request: Request) -> Response:
    task_id, queue, reviewer = _task_id(request), _queue(request), _reviewer(request)
    body = await _body(request, {"notes": str})
    notes = body.get("notes")
    view = await _run(lambda: queue.escalate(task_id, reviewer, notes))
    return json_response(view.to_dict())


async def stats(request: Request) -> Response:
    """Depth, oldest age, overdue and counts by status, overall and per deployment."""
    params = request.query_params
    unknown = [name for name in params if name != "deployment"]
    if unknown:
        raise InvalidInput(f"unknown query parameter(s): {', '.join(unknown)}; allowed: deployment")
    queue, deployment = _queue(request), params.get("deployment") or None
    if deployment is not None:
        one = await _run(lambda: queue.stats(deployment))
        return json_response(one.to_dict())
    per_deployment = await _run(queue.stats_by_deployment)
    return json_response(
        {
            **QueueStats.combined(per_deployment.values()).to_dict(),
            "deployments": {
                name: per_deployment[name].to_dict() for name in sorted(per_deployment)
            },
        }
    )


routes = [
    Route("/v1/review/tasks", list_tasks, methods=["GET"]),
    Route("/v1/review/tasks/claim", claim_next, methods=["POST"]),
    Route("/v1/review/tasks/{task_id}", get_task, methods=["GET"]),
    Route("/v1/review/tasks/{task_id}/claim", claim_task, methods=["POST"]),
    Route("/v1/review/tasks/{task_id}/resolve", resolve_task, methods=["POST"]),
    Route("/v1/review/tasks/{task_id}/release", release_task, methods=["POST"]),
    Route("/v1/review/tasks/{task_id}/escalate", escalate_task, methods=["POST"]),
    Route("/v1/review/stats", stats, methods=["GET"]),
]
