"""The ASGI application factory."""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette

from bastion.server import oip, v1
from bastion.server.problems import EXCEPTION_HANDLERS
from bastion.serving.service import ServingService, build_service
from bastion.settings import Settings
from bastion.spec import Spec, load_spec

CONFIG_ENV = "BASTION_CONFIG"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(service: ServingService) -> Starlette:
    """An app serving `service`; the service starts and stops with the app's lifespan."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.close()

    app = Starlette(
        routes=[*v1.routes, *oip.routes],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.service = service
    return app


def app_for(spec: Spec, settings: Settings) -> Starlette:
    return create_app(build_service(spec, settings, _utcnow))


def app_from_environment() -> Starlette:
    """Factory for uvicorn workers: the spec path comes from BASTION_CONFIG."""
    spec = load_spec(Path(os.environ.get(CONFIG_ENV, "bastion.yaml")))
    return app_for(spec, Settings())
