"""`/v1/subjects/{subject_id}`: export (GET) and erase (DELETE) a data subject's records.

Admin keys only. The raw subject id is in the URL because callers know subjects by it; it
is pseudonymized at once and appears in no log (the access log names route templates).
"""

from __future__ import annotations

import asyncio

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.server.v1 import json_response
from bastion.serving.service import ServingService
from bastion.serving.subjects import SubjectService


def _subjects(request: Request) -> SubjectService:
    service: ServingService = request.app.state.service
    return service.subjects


def _actor(request: Request) -> str:
    principal = getattr(request.state, "principal", None)
    return f"key:{principal.key_id}" if principal is not None else "insecure-mode"


async def export_subject(request: Request) -> Response:
    """Everything stored about one subject, as JSON."""
    subjects = _subjects(request)
    subject_id = request.path_params["subject_id"]
    exported = await asyncio.get_running_loop().run_in_executor(None, subjects.export, subject_id)
    return json_response(exported)


async def erase_subject(request: Request) -> Response:
    """Remove every record of one subject from every store; answers what was removed."""
    subjects = _subjects(request)
    subject_id = request.path_params["subject_id"]
    actor = _actor(request)
    report = await asyncio.get_running_loop().run_in_executor(
        None, lambda: subjects.erase(subject_id, actor=actor)
    )
    return json_response(report.as_dict())


routes = [
    Route("/v1/subjects/{subject_id}", export_subject, methods=["GET"]),
    Route("/v1/subjects/{subject_id}", erase_subject, methods=["DELETE"]),
]
