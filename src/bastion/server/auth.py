"""Who may call what: API-key authentication, role permissions, request ids and the access log.

Every endpoint but the two health checks needs ``Authorization: Bearer <token>``, except the
review console under ``/console``, which authenticates people by a signed session cookie
(`bastion.console.session`): no valid session redirects to the console's sign-in page, and a
role that may not work the review queue gets a 403 page. Bearer tokens are not accepted there,
and the cookie is accepted nowhere else.

A missing, unknown or revoked key is answered 401; a valid key whose role lacks the route's
action, or that is bound to another deployment, 403. Both are problem documents from
`bastion.server.problems`, like every other error.

Keys are checked against `KeyCache`, an in-memory copy of the active keys loaded at start-up,
so the request path never queries the database. The cache re-reads the keys when the change
feed announces a change and, as a safety net, every few seconds.

Each request gets a request id (a sane incoming ``X-Request-Id`` or a new one), echoed in the
response, and one log line on the ``bastion.access`` logger: request id, key id, role, method,
route, status and duration. Tokens are never logged. The route is logged as its template
(``/v1/decisions/{decision_id}``) so identifiers in URLs stay out of the log.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import os
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bastion.console.session import SESSION_COOKIE, signer_for
from bastion.console.templating import (
    forbidden_page,
    is_console_path,
    is_open_console_path,
    sign_in_redirect,
)
from bastion.errors import BastionError, Forbidden, Unauthorized
from bastion.server.problems import error_response
from bastion.store.keys import KEYS_TOPIC, ActiveKey, token_key_id, verify_token
from bastion.store.notify import Change, ChangeFeed

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("bastion.access")

#: paths that answer without a key, so orchestrators can probe them
OPEN_PATHS = frozenset({"/v2/health/live", "/v2/health/ready"})
REQUEST_ID_HEADER = "X-Request-Id"
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
REFRESH_SECONDS = 5.0
#: without a change feed the re-read is the only way revocations arrive; a lookup of the
#: few key rows twice a second costs nothing and keeps revocation within a second
UNNOTIFIED_REFRESH_SECONDS = 0.5


class Action(StrEnum):
    """What a route does, as far as permissions are concerned."""

    SERVER = "read server metadata"
    METADATA = "read model metadata"
    INFER = "score requests"
    READ_DECISIONS = "read decisions"
    METRICS = "read metrics"
    PRIVACY = "export or erase a data subject"
    REVIEW = "work the review queue"
    FEEDBACK = "send feedback labels"
    ADMIN = "administer"


ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "predict": frozenset({Action.SERVER, Action.METADATA, Action.INFER, Action.FEEDBACK}),
    "review": frozenset({Action.SERVER, Action.READ_DECISIONS, Action.REVIEW}),
    "operate": frozenset(
        {Action.SERVER, Action.METADATA, Action.READ_DECISIONS, Action.METRICS, Action.FEEDBACK}
    ),
    "admin": frozenset(Action),
}


@dataclass(frozen=True)
class Rule:
    """A route's action, and the path parameter naming its deployment (if it has one)."""

    action: Action
    deployment_param: str | None = None


def _oip(path: str, rule: Rule) -> dict[str, Rule]:
    """The rule for an OIP model route, with and without ``/versions/{version}``."""
    return {path: rule, path.replace("{model}", "{model}/versions/{version}"): rule}


#: every route's rule, by route template; a route missing here is for admin keys only
ROUTE_RULES: dict[str, Rule] = {
    "/v2": Rule(Action.SERVER),
    "/openapi.json": Rule(Action.SERVER),
    **_oip("/v2/models/{model}", Rule(Action.METADATA, "model")),
    **_oip("/v2/models/{model}/ready", Rule(Action.METADATA, "model")),
    **_oip("/v2/models/{model}/infer", Rule(Action.INFER, "model")),
    "/v1/deployments/{deployment}/decide": Rule(Action.INFER, "deployment"),
    "/v1/decisions/{decision_id}": Rule(Action.READ_DECISIONS),
    "/v1/decisions/{decision_id}/explanation": Rule(Action.READ_DECISIONS),
    "/v1/review/tasks": Rule(Action.REVIEW),
    "/v1/review/tasks/claim": Rule(Action.REVIEW),
    "/v1/review/tasks/{task_id}": Rule(Action.REVIEW),
    "/v1/review/tasks/{task_id}/claim": Rule(Action.REVIEW),
    "/v1/review/tasks/{task_id}/resolve": Rule(Action.REVIEW),
    "/v1/review/tasks/{task_id}/release": Rule(Action.REVIEW),
    "/v1/review/tasks/{task_id}/escalate": Rule(Action.REVIEW),
    "/v1/review/stats": Rule(Action.REVIEW),
    "/v1/decisions/{decision_id}/feedback": Rule(Action.FEEDBACK),
    "/v1/deployments/{deployment}/monitor/windows": Rule(Action.METRICS, "deployment"),
    "/v1/deployments/{deployment}/monitor/alerts": Rule(Action.METRICS, "deployment"),
    "/metrics": Rule(Action.METRICS),
    "/v1/subjects/{subject_id}": Rule(Action.PRIVACY),
}
ADMIN_ONLY = Rule(Action.ADMIN)


@dataclass(frozen=True)
class Principal:
    """The key a request was authenticated with, at `request.state.principal` in handlers
    (None on the open health paths and in insecure mode)."""

    key_id: str
    role: str
    deployment: str | None


def authorize(principal: Principal, rule: Rule, path_params: dict[str, Any]) -> None:
    """Raise `Forbidden` unless the principal's role and deployment allow the rule."""
    if rule.action not in ROLE_ACTIONS.get(principal.role, frozenset()):
        raise Forbidden(f"a {principal.role} key may not {rule.action}")
    if principal.deployment is not None and rule.deployment_param is not None:
        named = path_params.get(rule.deployment_param)
        if named != principal.deployment:
            raise Forbidden(
                f"this key is bound to deployment {principal.deployment!r}, not {named!r}"
            )


class KeyCache:
    """The active API keys of this process, re-read on change notifications and periodically.

    `load` reads the active keys from the database (a blocking call, run in a thread).
    A revocation announced on the feed takes effect at once, before the re-read finishes.
    If a re-read fails, the last good set stays in use and the failure is logged.
    """

    def __init__(
        self,
        load: Callable[[], Iterable[ActiveKey]],
        feed: ChangeFeed,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
    ) -> None:
        if refresh_seconds <= 0:
            raise ValueError(f"refresh_seconds must be > 0, got {refresh_seconds}")
        self._load = load
        self._feed = feed
        self._refresh_seconds = refresh_seconds
        self._keys: dict[str, ActiveKey] = {}
        self._revoked: set[str] = set()  # revocations heard of; a re-read never brings them back
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def __len__(self) -> int:
        return len(self._keys)

    async def start(self) -> None:
        """Subscribe, load the keys (failing start-up if the database cannot be read), and
        start the refresh loop."""
        self._wake = asyncio.Event()
        self._feed.subscribe(KEYS_TOPIC, self._on_change)
        await self.reload()
        self._task = asyncio.create_task(self._refresh_forever(), name="key-cache-refresh")

    async def stop(self) -> None:
        self._feed.unsubscribe(KEYS_TOPIC, self._on_change)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def reload(self) -> None:
        keys = await asyncio.get_running_loop().run_in_executor(None, lambda: list(self._load()))
        self._keys = {k.id: k for k in keys if k.id not in self._revoked}

    def get(self, key_id: str) -> ActiveKey | None:
        """The active key with this id, or None (unknown or revoked)."""
        return self._keys.get(key_id)

    def authenticate(self, token: str) -> ActiveKey | None:
        """The active key `token` belongs to, or None. Never touches the database."""
        key_id = token_key_id(token)
        key = self._keys.get(key_id) if key_id is not None else None
        if key is None or not verify_token(token, key.secret_hash):
            return None
        return key

    def _on_change(self, change: Change) -> None:
        key_id = change.payload.get("key_id")
        if change.payload.get("action") == "revoked" and isinstance(key_id, str):
            self._revoked.add(key_id)
            self._keys.pop(key_id, None)
        self._wake.set()

    async def _refresh_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._refresh_seconds)
            self._wake.clear()
            try:
                await self.reload()
            except Exception as exc:  # keep serving with the last good set
                logger.warning("could not re-read API keys (%s); keeping the last good set", exc)


#: request ids need to be unique, not secret: a random prefix per process and a counter,
#: instead of a getrandom system call per request (8 % of the event loop under load)
_REQUEST_ID_PREFIX = os.urandom(8).hex()
_request_numbers = itertools.count()


def _request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _SANE_REQUEST_ID.match(candidate):
                return candidate
            break
    return f"{_REQUEST_ID_PREFIX}{next(_request_numbers):016x}"


def _bearer_token(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token.strip() if scheme.lower() == "bearer" and token.strip() else None
    return None


class AuthMiddleware:
    """Authenticate, authorize, identify and log every HTTP request (plain ASGI).

    With `insecure=True` there is no authentication at all (development on loopback only);
    requests still get request ids and log lines.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        routes: Sequence[BaseRoute],
        keys: KeyCache | None,
        insecure: bool = False,
    ) -> None:
        if keys is None and not insecure:
            raise ValueError("AuthMiddleware needs a KeyCache unless insecure=True")
        self.app = app
        # (template, compiled path) of each route, matched once per request by `_match`
        self.routes = [(r.path, r.path_regex) for r in routes if isinstance(r, Route)]
        self.keys = keys
        self.insecure = insecure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        request_id = _request_id(scope)
        template, params = self._match(scope)
        state = scope.setdefault("state", {})
        state["request_id"] = request_id
        principal: Principal | None = None
        status = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            try:
                if self.insecure or scope["path"] in OPEN_PATHS:
                    pass
                elif is_console_path(self._path(scope)):
                    principal, console_refusal = self._console(scope)
                    if console_refusal is not None:
                        await console_refusal(scope, receive, send_with_request_id)
                        return
                else:
                    principal = self._authenticate(scope)
                    if template is not None:
                        authorize(principal, ROUTE_RULES.get(template, ADMIN_ONLY), params)
            except BastionError as refusal:
                response = error_response(refusal, scope["path"])
                await response(scope, receive, send_with_request_id)
                return
            state["principal"] = principal
            await self.app(scope, receive, send_with_request_id)
        finally:
            access_logger.info(
                "request_id=%s key=%s role=%s method=%s path=%s status=%d duration_ms=%.2f",
                request_id,
                principal.key_id if principal else "-",
                principal.role if principal else "-",
                scope["method"],
                template or scope["path"],
                status,
                (time.perf_counter() - started) * 1000,
                extra={
                    "request_id": request_id,
                    "key_id": principal.key_id if principal else None,
                    "role": principal.role if principal else None,
                    "status": status,
                },
            )

    def _match(self, scope: Scope) -> tuple[str | None, dict[str, str]]:
        """The template and raw path parameters of the route the path belongs to, if any.

        Like Starlette's router, whatever the method: a wrong method is the app's 405.
        """
        path = self._path(scope)
        for template, pattern in self.routes:
            match = pattern.match(path)
            if match is not None:
                return template, match.groupdict()
        return None, {}

    @staticmethod
    def _path(scope: Scope) -> str:
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        return path

    def _console(self, scope: Scope) -> tuple[Principal | None, Response | None]:
        """The principal of a console request, from its session cookie (never a Bearer
        token); or the refusal: the sign-in page without a valid session, a 403 page for a
        role that may not review. The sign-in page and the stylesheet are open."""
        request = Request(scope)
        if is_open_console_path(self._path(scope)):
            return None, None
        cookie = request.cookies.get(SESSION_COOKIE)
        session = None
        if cookie and self.keys is not None:
            session = signer_for(scope["app"]).verify(cookie, self.keys.get)
        if session is None:
            return None, sign_in_redirect(request)
        principal = Principal(session.key_id, session.role, None)
        if Action.REVIEW not in ROLE_ACTIONS.get(session.role, frozenset()):
            return principal, forbidden_page(session)
        scope["state"]["console_session"] = session
        return principal, None

    def _authenticate(self, scope: Scope) -> Principal:
        token = _bearer_token(scope)
        if token is None:
            raise Unauthorized("this endpoint needs an API key: send Authorization: Bearer <key>")
        key = self.keys.authenticate(token) if self.keys is not None else None
        if key is None:
            raise Unauthorized("the API key is not valid: it is unknown, malformed or revoked")
        return Principal(key.id, key.role, key.deployment)
