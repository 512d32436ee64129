"""`/v1/deployments/{deployment}/monitor/...`: stored drift windows and alert states.

Keys with the ``operate`` (or ``admin``) role. The routes only translate: the query string
is checked here, the reading happens in `WindowService` and `bastion.monitor.alerts` on a
worker thread. Both read what the background monitor stored; nothing is computed here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.errors import FieldError, InvalidInput
from bastion.monitor.alerts import alert_history, alert_states
from bastion.server.v1 import json_response
from bastion.serving.service import ServingService

if TYPE_CHECKING:
    from bastion.monitor.windows import WindowService

T = TypeVar("T")

#: the most windows or alert events one request returns
MAX_LIMIT = 500


async def _run(call: Callable[[], T]) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, call)


def _deployment(request: Request) -> tuple[ServingService, str]:
    """The service and the deployment named in the path (404 when the spec has none)."""
    service: ServingService = request.app.state.service
    name: str = request.path_params["deployment"]
    service.deployment(name)
    return service, name


def _limit(request: Request, default: int) -> int:
    params = request.query_params
    unknown = [name for name in params if name != "limit"]
    if unknown:
        raise InvalidInput(
            f"unknown query parameter(s): {', '.join(unknown)}; allowed: limit",
            errors=[FieldError(name, "is not a known query parameter") for name in unknown],
        )
    text = params.get("limit", str(default))
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidInput(
            f"limit must be a whole number from 1 to {MAX_LIMIT}, got {text!r}",
            errors=[FieldError("limit", "must be a whole number", expected=f"1 to {MAX_LIMIT}")],
        )
    return int(text)


def _windows(service: ServingService) -> WindowService:
    if service.monitor is not None:
        return service.monitor.windows
    # The statistics stack loads here, not at server start, when nothing is monitored.
    from bastion.monitor.windows import WindowService

    return WindowService(service.registry.database, service.registry, service.clock)


async def list_windows(request: Request) -> Response:
    """The deployment's stored windows, newest first (``?limit=``, default 20)."""
    service, name = _deployment(request)
    limit = _limit(request, 20)
    windows = await _run(lambda: _windows(service).list(name, limit))
    return json_response({"deployment": name, "windows": [w.to_dict() for w in windows]})


async def list_alerts(request: Request) -> Response:
    """Each alert rule's current state, and the latest state changes (``?limit=``)."""
    service, name = _deployment(request)
    limit = _limit(request, 100)
    database = service.registry.database
    states = await _run(lambda: alert_states(database, name))
    history = await _run(lambda: alert_history(database, name, limit))
    return json_response(
        {
            "deployment": name,
            "states": [s.to_dict() for s in states],
            "history": [e.to_dict() for e in history],
        }
    )


routes = [
    Route("/v1/deployments/{deployment}/monitor/windows", list_windows, methods=["GET"]),
    Route("/v1/deployments/{deployment}/monitor/alerts", list_alerts, methods=["GET"]),
]
