"""The review console: server-rendered pages under ``/console/review`` for reviewers."""

from __future__ import annotations

from starlette.routing import BaseRoute

routes: list[BaseRoute] = []
