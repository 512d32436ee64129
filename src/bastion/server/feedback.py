"""`POST /v1/decisions/{decision_id}/feedback`: late labels for decisions.

Body: ``{"label": ..., "observed_at": "2026-11-26T12:00:00Z"}`` (``observed_at`` optional,
default now). The label is checked against the decision's model (a class of a classifier,
0/1 for a binary one, a number for a regressor; see `bastion.monitor.perf_labels`).
Posting again keeps the earlier label as history; the latest observation wins. The actor is
the calling key's id (``anonymous`` in insecure mode), the source ``api``. A key bound to
one deployment sees only that deployment's decisions (others are 404). Answers 201 with the
stored label and ``earlier_labels``, the number the decision had before.
"""

from __future__ import annotations

import asyncio
import uuid

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from bastion.errors import FieldError, InvalidInput, NotFound
from bastion.monitor.perf_labels import FeedbackService
from bastion.server.body import read_json_object
from bastion.server.v1 import json_response
from bastion.serving.service import ServingService

ANONYMOUS = "anonymous"
FIELDS = ("label", "observed_at")


def _service(request: Request) -> FeedbackService:
    """One per app: it caches the models' output signatures."""
    state = request.app.state
    existing: FeedbackService | None = getattr(state, "feedback", None)
    if existing is None:
        service: ServingService = state.service
        existing = FeedbackService(service.registry.database, service.registry, service.clock)
        state.feedback = existing
    return existing


async def post_feedback(request: Request) -> Response:
    decision_id: str = request.path_params["decision_id"]
    try:
        uuid.UUID(decision_id)
    except ValueError:
        raise NotFound(f"no decision with id {decision_id!r}") from None
    serving: ServingService = request.app.state.service
    payload = await read_json_object(request, serving.spec.server.max_body_bytes)
    unknown = [name for name in payload if name not in FIELDS]
    if unknown:
        raise InvalidInput(
            f"unknown field(s): {', '.join(unknown)}; the body has label and observed_at",
            errors=[
                FieldError(n, "is not a known field", expected="label, observed_at")
                for n in unknown
            ],
        )
    if "label" not in payload:
        raise InvalidInput("the body needs a label", errors=[FieldError("label", "is required")])
    principal = getattr(request.state, "principal", None)
    actor = principal.key_id if principal is not None else ANONYMOUS
    deployment = principal.deployment if principal is not None else None
    service = _service(request)
    recorded = await asyncio.get_running_loop().run_in_executor(
        None,
        lambda: service.record(
            decision_id,
            payload["label"],
            actor=actor,
            observed_at=payload.get("observed_at"),
            deployment=deployment,
        ),
    )
    return json_response(recorded.to_dict(), status_code=201)


routes: list[BaseRoute] = [
    Route("/v1/decisions/{decision_id}/feedback", post_feedback, methods=["POST"]),
]
