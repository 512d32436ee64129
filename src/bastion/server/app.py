"""The ASGI application factory."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime
from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware

from bastion import console
from bastion.server import feedback, monitor, oip, openapi, review, subjects, v1
from bastion.server.auth import (
    REFRESH_SECONDS,
    UNNOTIFIED_REFRESH_SECONDS,
    AuthMiddleware,
    KeyCache,
)
from bastion.server.problems import EXCEPTION_HANDLERS
from bastion.server.ratelimit import (
    DeploymentLimits,
    RateLimitMiddleware,
    build_limits,
    close_limits,
)
from bastion.serving.service import ServingService, build_service
from bastion.settings import Settings
from bastion.spec import Spec, load_spec
from bastion.store.keys import KeyService
from bastion.store.notify import ChangeFeed, NullFeed, open_change_feed

logger = logging.getLogger(__name__)

CONFIG_ENV = "BASTION_CONFIG"
#: set to "1" by `bastion serve --insecure` (after its loopback check) for the app factory
INSECURE_ENV = "BASTION_SERVE_INSECURE"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def create_app(
    service: ServingService,
    *,
    feed: ChangeFeed | None = None,
    insecure: bool = False,
    key_refresh_seconds: float = REFRESH_SECONDS,
    limits: Mapping[str, DeploymentLimits] | None = None,
) -> Starlette:
    """An app serving `service`; the service, the change feed and the key cache start and
    stop with the app's lifespan.

    Every endpoint but health needs an API key unless `insecure` (development only: the
    `serve` command allows it on loopback addresses alone). `feed` announces key changes
    between replicas; without one, the keys are re-read every `key_refresh_seconds`.
    `limits` are the deployments' rate limits (default: the spec's, in memory).
    """
    rate_limits = limits if limits is not None else build_limits(service.spec, None)
    change_feed = feed if feed is not None else NullFeed()
    keys = None
    if not insecure:
        key_service = KeyService(service.registry.database, change_feed)
        refresh = key_refresh_seconds
        if isinstance(change_feed, NullFeed):
            refresh = min(refresh, UNNOTIFIED_REFRESH_SECONDS)
        keys = KeyCache(key_service.active, change_feed, refresh_seconds=refresh)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if insecure:
            logger.warning(
                "INSECURE MODE: no authentication, every endpoint is open to anyone who can "
                "reach this address. For development on loopback only."
            )
        async with contextlib.AsyncExitStack() as stack:
            stack.push_async_callback(close_limits, rate_limits)
            await change_feed.start()
            stack.push_async_callback(change_feed.stop)
            await service.start()
            stack.push_async_callback(service.close)
            if keys is not None:
                await keys.start()
                stack.push_async_callback(keys.stop)
            yield

    routes = [
        *v1.routes,
        *review.routes,
        *feedback.routes,
        *monitor.routes,
        *subjects.routes,
        *oip.routes,
        *openapi.routes,
        *console.routes,
    ]
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(AuthMiddleware, routes=routes, keys=keys, insecure=insecure),
            Middleware(
                RateLimitMiddleware, routes=routes, limits=rate_limits, metrics=service.metrics
            ),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.keys = keys
    return app


def app_for(spec: Spec, settings: Settings, *, insecure: bool = False) -> Starlette:
    limits = build_limits(spec, settings.redis_url)  # before opening anything: it may refuse
    service = build_service(spec, settings, _utcnow)
    feed = open_change_feed(settings.resolved_database_url, settings.redis_url)
    return create_app(service, feed=feed, insecure=insecure, limits=limits)


def app_from_environment() -> Starlette:
    """Factory for uvicorn workers: the spec path comes from BASTION_CONFIG."""
    spec = load_spec(Path(os.environ.get(CONFIG_ENV, "bastion.yaml")))
    return app_for(spec, Settings(), insecure=os.environ.get(INSECURE_ENV) == "1")
