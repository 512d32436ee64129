"""Rate limits on scoring routes: GCRA limiters in memory or in Redis, and their middleware.

GCRA (the generic cell rate algorithm) keeps one number per limited thing, its theoretical
arrival time (TAT): a request is allowed when ``max(TAT, now) + interval - burst * interval
<= now``, and then moves the TAT on by one interval (``1 / rate``). So `burst` requests pass
at once and then one per interval; a refused request learns exactly when to retry.

Two backends share the `Limiter` interface: `MemoryLimiter` (per process) and
`RedisLimiter` (one atomic Lua script using the Redis clock, keys expiring once idle, so
every replica shares the limit). Redis errors never leak: they become `BackendUnavailable`,
and the middleware fails open or closed as the deployment's spec says.

`RateLimitMiddleware` (plain ASGI, after `AuthMiddleware` so the key is known) applies the
per-key limit and then the deployment limit to the routes that score for a deployment.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bastion.errors import BastionError, RateLimited, RateLimitUnavailable, SpecError
from bastion.monitor.metrics import ServingMetrics
from bastion.server.auth import ROUTE_RULES, Action, Principal
from bastion.server.problems import error_response
from bastion.spec import Limits, Spec

logger = logging.getLogger(__name__)

KEY_PREFIX = "bastion:ratelimit:"
#: at most one "backend unreachable" log line per deployment this often
LOG_EVERY_SECONDS = 10.0


@dataclass(frozen=True)
class Rate:
    """`burst` requests at once, `per_second` on average."""

    per_second: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_second <= 0:
            raise ValueError(f"per_second must be > 0, got {self.per_second}")
        if self.burst < 1:
            raise ValueError(f"burst must be >= 1, got {self.burst}")

    @property
    def interval(self) -> float:
        return 1.0 / self.per_second


class BackendUnavailable(Exception):
    """The limiter's store could not be asked; the caller decides to fail open or closed."""


class Limiter(Protocol):
    async def acquire(self, key: str, rate: Rate) -> float:
        """Take one request for `key`: 0.0 if allowed, else the seconds until one would be."""
        ...

    async def close(self) -> None: ...


class MemoryLimiter:
    """GCRA in this process's memory: one float per key (deployments and API keys only)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tat: dict[str, float] = {}

    async def acquire(self, key: str, rate: Rate) -> float:
        now = self._clock()
        new_tat = max(self._tat.get(key, now), now) + rate.interval
        allowed_at = new_tat - rate.burst * rate.interval
        if allowed_at > now:
            return allowed_at - now
        self._tat[key] = new_tat
        return 0.0

    async def close(self) -> None:
        self._tat.clear()


# The Redis clock (TIME) is the one clock all replicas share. Returns "0" or the wait in
# seconds, as a string: Lua numbers returned to Redis would be truncated to integers.
_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allowed_at = new_tat - burst * interval
if allowed_at > now then
  return tostring(allowed_at - now)
end
redis.call('SET', KEYS[1], tostring(new_tat), 'PX', math.ceil((new_tat - now) * 1000) + 1000)
return '0'
"""


class RedisLimiter:
    """GCRA in Redis, shared by every replica; keys live under `prefix` and expire once idle."""

    def __init__(
        self, client: aioredis.Redis, *, prefix: str = KEY_PREFIX, owns_client: bool = True
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._owns_client = owns_client
        self._script = client.register_script(_GCRA_LUA)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = KEY_PREFIX, timeout: float = 0.5) -> RedisLimiter:
        client = aioredis.Redis.from_url(
            url, socket_connect_timeout=timeout, socket_timeout=timeout, retry_on_timeout=False
        )
        return cls(client, prefix=prefix)

    def __repr__(self) -> str:
        return f"RedisLimiter(prefix={self._prefix!r})"  # the URL may carry a password

    async def acquire(self, key: str, rate: Rate) -> float:
        try:
            answer = await self._script(
                keys=[self._prefix + key], args=[repr(rate.interval), rate.burst]
            )
        except (RedisError, OSError) as exc:
            raise BackendUnavailable(f"{type(exc).__name__}: {exc}") from exc
        return float(answer)

    async def close(self) -> None:
        if self._owns_client:
            await self._client.aclose()


@dataclass(frozen=True)
class DeploymentLimits:
    """One deployment's rates, limiter and failure mode, as the middleware applies them."""

    limiter: Limiter
    deployment: Rate | None
    per_key: Rate | None
    fail_closed: bool


def rates_of(limits: Limits) -> tuple[Rate | None, Rate | None]:
    """The deployment-wide and per-key rates of a spec's `limits` section."""

    def rate(per_second: float | None, burst: int | None) -> Rate | None:
        if per_second is None:
            return None
        return Rate(per_second, burst if burst is not None else max(1, math.ceil(per_second)))

    return (
        rate(limits.requests_per_second, limits.burst),
        rate(limits.per_key_requests_per_second, limits.per_key_burst),
    )


def check_backends(spec: Spec, redis_url: str | None) -> None:
    """Raise `SpecError` if a rate-limited deployment asks for Redis without `redis_url`."""
    for name, deployment in spec.deployments.items():
        limited = any(rates_of(deployment.limits))
        if limited and deployment.limits.backend == "redis" and not redis_url:
            raise SpecError(
                f"deployments.{name}.limits.backend is redis, which needs "
                "BASTION_REDIS_URL (e.g. redis://127.0.0.1:6379/0); it is not set"
            )


def build_limits(
    spec: Spec,
    redis_url: str | None,
    *,
    memory: Limiter | None = None,
    redis: Limiter | None = None,
) -> dict[str, DeploymentLimits]:
    """The limits of every rate-limited deployment; one memory and at most one Redis limiter.

    Raises `SpecError` if a deployment asks for the Redis backend without `redis_url`.
    """
    check_backends(spec, redis_url)
    out: dict[str, DeploymentLimits] = {}
    for name, deployment in spec.deployments.items():
        per_deployment, per_key = rates_of(deployment.limits)
        if per_deployment is None and per_key is None:
            continue
        if deployment.limits.backend == "redis":
            if redis is None:
                assert redis_url is not None  # checked above
                redis = RedisLimiter.from_url(redis_url)
            limiter = redis
        else:
            memory = memory if memory is not None else MemoryLimiter()
            limiter = memory
        out[name] = DeploymentLimits(
            limiter, per_deployment, per_key, deployment.limits.on_backend_error == "closed"
        )
    return out


async def close_limits(limits: Mapping[str, DeploymentLimits]) -> None:
    for limiter in {id(d.limiter): d.limiter for d in limits.values()}.values():
        await limiter.close()


class RateLimitMiddleware:
    """429 with Retry-After past a deployment's or a key's rate, on scoring routes (ASGI)."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        limits: Mapping[str, DeploymentLimits],
        metrics: ServingMetrics,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.limits = limits
        self.metrics = metrics
        self._clock = clock
        self._last_logged: dict[str, float] = {}
        # (compiled path, deployment parameter) of every route that scores for a deployment
        self.routes: list[tuple[Any, str]] = []
        for route in routes:
            if not isinstance(route, Route):
                continue
            rule = ROUTE_RULES.get(route.path)
            if rule is not None and rule.action is Action.INFER and rule.deployment_param:
                self.routes.append((route.path_regex, rule.deployment_param))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.limits:
            await self.app(scope, receive, send)
            return
        deployment = self._deployment(scope)
        limits = self.limits.get(deployment) if deployment is not None else None
        if deployment is not None and limits is not None:
            try:
                await self._check(deployment, limits, scope.get("state", {}).get("principal"))
            except BastionError as refusal:
                await error_response(refusal, scope["path"])(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _deployment(self, scope: Scope) -> str | None:
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        for pattern, param in self.routes:
            match = pattern.match(path)
            if match is not None:
                return str(match.group(param))
        return None

    async def _check(
        self, deployment: str, limits: DeploymentLimits, principal: Principal | None
    ) -> None:
        # The key first: a key over its own limit does not use up the deployment's.
        checks: list[tuple[str, str, Rate]] = []
        if limits.per_key is not None and principal is not None:
            checks.append(("key", f"k:{deployment}:{principal.key_id}", limits.per_key))
        if limits.deployment is not None:
            checks.append(("deployment", f"d:{deployment}", limits.deployment))
        for scope_name, key, rate in checks:
            try:
                wait = await limits.limiter.acquire(key, rate)
            except BackendUnavailable as exc:
                self._backend_error(deployment, exc, limits.fail_closed)
                return
            if wait > 0:
                self.metrics.rate_limited.labels(deployment, scope_name).inc()
                raise RateLimited(
                    f"over the {scope_name} rate limit of deployment {deployment} "
                    f"({rate.per_second:g} requests/s, burst {rate.burst}); "
                    f"retry in {wait:.2f} s",
                    retry_after=max(1, math.ceil(wait)),
                )

    def _backend_error(self, deployment: str, exc: BackendUnavailable, closed: bool) -> None:
        self.metrics.rate_limit_backend_errors.labels(deployment).inc()
        now = self._clock()
        if now - self._last_logged.get(deployment, -math.inf) >= LOG_EVERY_SECONDS:
            self._last_logged[deployment] = now
            logger.warning(
                "rate-limit store unreachable for deployment %s (%s); failing %s",
                deployment,
                exc,
                "closed: 503" if closed else "open: not limiting",
            )
        if closed:
            raise RateLimitUnavailable(
                f"rate limits of deployment {deployment} cannot be checked right now; retry later"
            )
