"""`/v1/deployments/{deployment}/monitor/...`: drift windows and alerts over HTTP."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
