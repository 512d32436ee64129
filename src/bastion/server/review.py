"""`/v1/review` routes: the human review queue (list, claim, resolve, release, escalate)."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
