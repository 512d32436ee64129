"""`POST /v1/decisions/{decision_id}/feedback`: late labels for decisions."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
