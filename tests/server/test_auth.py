"""Access control through the real app: keys, roles, deployment binding, request ids, the
access log; and the key cache on its own."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient
from starlette.types import Message, Receive, Scope, Send

from bastion.console.session import SESSION_COOKIE, signer_for
from bastion.console.templating import is_console_path
from bastion.errors import StorageError
from bastion.server.app import create_app
from bastion.server.auth import OPEN_PATHS, ROUTE_RULES, AuthMiddleware, KeyCache
from bastion.serving.service import build_service
from bastion.store.keys import KEYS_TOPIC, ActiveKey, KeyService, hash_token
from bastion.store.notify import ChangeFeed, NullFeed
from tests.credentials import bearer, create_key
from tests.server.conftest import Served

PROBLEM = "application/problem+json"
ROW = {"income": 50.0, "debt": 10.0, "age": 40.0, "region": "north"}
DECIDE = {"features": ROW}
INFER = {
    "inputs": [
        {"name": name, "datatype": "FP64", "shape": [1], "data": [ROW[name]]}
        for name in ("income", "debt", "age")
    ]
    + [{"name": "region", "datatype": "BYTES", "shape": [1], "data": ["north"]}]
}

#: a key for tests that hand the cache its keys directly
TOKEN = "bst_0123456789abcdef_" + "s" * 43
KEY = ActiveKey("0123456789abcdef", "predict", None, hash_token(TOKEN))

#: name → (method, path, body); `{decision_id}` is filled in with a stored decision
ENDPOINTS: dict[str, tuple[str, str, dict[str, Any] | None]] = {
    "server metadata": ("GET", "/v2", None),
    "model metadata": ("GET", "/v2/models/credit", None),
    "model ready": ("GET", "/v2/models/credit/versions/1/ready", None),
    "infer": ("POST", "/v2/models/credit/infer", INFER),
    "decide": ("POST", "/v1/deployments/credit/decide", DECIDE),
    "read decision": ("GET", "/v1/decisions/{decision_id}", None),
    "metrics": ("GET", "/metrics", None),
}
#: the documented role table (docs/access.md)
ALLOWED = {
    "predict": {"server metadata", "model metadata", "model ready", "infer", "decide"},
    "review": {"server metadata", "read decision"},
    "operate": {"server metadata", "model metadata", "model ready", "read decision", "metrics"},
    "admin": set(ENDPOINTS),
}


@dataclass
class Secured:
    client: TestClient
    tokens: dict[str, str]
    decision_id: str

    def call(self, endpoint: str, token: str | None) -> Any:
        method, path, body = ENDPOINTS[endpoint]
        headers = bearer(token) if token else {}
        return self.client.request(
            method, path.format(decision_id=self.decision_id), json=body, headers=headers
        )


@pytest.fixture
def secured(served: Served) -> Iterator[Secured]:
    """The app with one key per role (plus one bound to `credit`) and one stored decision."""
    url = served.settings.resolved_database_url
    tokens = {role: create_key(url, role) for role in ALLOWED}
    tokens["credit-only"] = create_key(url, "predict", deployment="credit")
    with TestClient(served.app()) as client:
        decided = client.post(
            "/v1/deployments/credit/decide", json=DECIDE, headers=bearer(tokens["admin"])
        )
        assert decided.status_code == 200, decided.text
        yield Secured(client, tokens, decided.json()["decision_id"])


def time_now() -> datetime:
    return datetime.now(UTC)


def assert_problem(response: Any, status: int, slug: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem: dict[str, Any] = response.json()
    assert problem["type"].endswith(slug)
    return problem


@pytest.mark.parametrize("role", list(ALLOWED))
def test_role_allows_exactly_its_endpoints(secured: Secured, role: str) -> None:
    statuses = {name: secured.call(name, secured.tokens[role]).status_code for name in ENDPOINTS}

    assert statuses == {name: 200 if name in ALLOWED[role] else 403 for name in ENDPOINTS}


def test_forbidden_names_the_role_and_action(secured: Secured) -> None:
    response = secured.call("metrics", secured.tokens["predict"])

    problem = assert_problem(response, 403, "forbidden")
    assert problem["detail"] == "a predict key may not read metrics"


def test_bound_predict_key_reaches_only_its_deployment(secured: Secured) -> None:
    token = secured.tokens["credit-only"]
    headers = bearer(token)
    client = secured.client

    assert secured.call("decide", token).status_code == 200
    assert secured.call("infer", token).status_code == 200
    assert client.get("/v2", headers=headers).status_code == 200
    refused = [
        client.get("/v2/models/numeric", headers=headers),
        client.get("/v2/models/amount/versions/1/ready", headers=headers),
        client.post("/v2/models/numeric/infer", json=INFER, headers=headers),
        client.post("/v1/deployments/amount/decide", json=DECIDE, headers=headers),
    ]
    for response in refused:
        problem = assert_problem(response, 403, "forbidden")
        assert "bound to deployment 'credit'" in problem["detail"]


def test_health_is_open_without_a_key(secured: Secured) -> None:
    assert secured.client.get("/v2/health/live").status_code == 200
    assert secured.client.get("/v2/health/ready").status_code == 200


def _wrong_secret(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Basic YWRtaW46YWRtaW4=",
        "Bearer",
        "Bearer not-a-bastion-key",
        "Bearer bst_0123456789abcdef_" + "x" * 43,
        "wrong-secret",
    ],
    ids=["missing", "basic", "empty", "garbage", "unknown-key", "wrong-secret"],
)
def test_missing_or_invalid_key_is_401_with_bearer_challenge(
    secured: Secured, authorization: str | None
) -> None:
    if authorization == "wrong-secret":
        authorization = f"Bearer {_wrong_secret(secured.tokens['admin'])}"
    headers = {"Authorization": authorization} if authorization else {}

    response = secured.client.post("/v2/models/credit/infer", json=INFER, headers=headers)

    problem = assert_problem(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"
    assert problem["error"] == problem["detail"], "tritonclient reads OIP errors from 'error'"
    assert secured.tokens["admin"] not in response.text


def test_bearer_scheme_is_case_insensitive(secured: Secured) -> None:
    headers = {"Authorization": f"bearer {secured.tokens['predict']}"}

    assert secured.client.get("/v2/models/credit", headers=headers).status_code == 200


def test_unknown_path_is_401_without_a_key_and_404_with_one(secured: Secured) -> None:
    assert secured.client.get("/v1/nothing-here").status_code == 401
    response = secured.client.get("/v1/nothing-here", headers=bearer(secured.tokens["review"]))
    assert_problem(response, 404, "not-found")


def test_sane_request_id_is_echoed(secured: Secured) -> None:
    response = secured.client.get("/v2/health/live", headers={"X-Request-Id": "req-42.a:b_c"})

    assert response.headers["x-request-id"] == "req-42.a:b_c"


@pytest.mark.parametrize("incoming", [None, "has spaces", "x" * 129, "<script>", ""], ids=repr)
def test_request_id_is_made_when_missing_or_insane(secured: Secured, incoming: str | None) -> None:
    headers = {"X-Request-Id": incoming} if incoming is not None else {}

    response = secured.client.get("/v2", headers=headers)  # a 401: refusals get ids too

    assert response.status_code == 401
    assert re.fullmatch(r"[0-9a-f]{32}", response.headers["x-request-id"])


def _access_lines(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bastion.access"]


def test_each_request_is_logged_once_with_key_and_role(
    secured: Secured, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bastion.access"):
        secured.client.get(
            "/v2/models/credit",
            headers={**bearer(secured.tokens["operate"]), "X-Request-Id": "trace-1"},
        )
        secured.client.get("/metrics", headers=bearer(secured.tokens["review"]))
        secured.client.get("/metrics")

    ok, forbidden, unauthorized = (r.getMessage() for r in _access_lines(caplog))
    operate_id = secured.tokens["operate"].split("_")[1]
    review_id = secured.tokens["review"].split("_")[1]
    assert re.fullmatch(
        rf"request_id=trace-1 key={operate_id} role=operate method=GET "
        rf"path=/v2/models/\{{model\}} status=200 duration_ms=\d+\.\d\d",
        ok,
    )
    assert f"key={review_id} role=review method=GET path=/metrics status=403" in forbidden
    assert "key=- role=- method=GET path=/metrics status=401" in unauthorized


def test_tokens_never_reach_the_log(secured: Secured, caplog: pytest.LogCaptureFixture) -> None:
    admin = secured.tokens["admin"]
    wrong = _wrong_secret(admin)
    with caplog.at_level(logging.DEBUG):
        for token in (admin, wrong, secured.tokens["predict"]):
            for name in ENDPOINTS:
                secured.call(name, token)

    assert len(_access_lines(caplog)) == 3 * len(ENDPOINTS)
    logged = caplog.text + " ".join(str(r.__dict__) for r in caplog.records)
    for token in (admin, wrong, secured.tokens["predict"]):
        assert token not in logged
        assert token.split("_", 2)[2] not in logged
        assert hash_token(token) not in logged


def test_access_log_names_the_route_not_the_identifiers_in_it(
    secured: Secured, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="bastion.access"):
        secured.call("read decision", secured.tokens["review"])

    (line,) = (r.getMessage() for r in _access_lines(caplog))
    assert "path=/v1/decisions/{decision_id} status=200" in line
    assert secured.decision_id not in line


def test_revoked_and_new_keys_take_effect_at_the_periodic_re_read(served: Served) -> None:
    url = served.settings.resolved_database_url
    keys = KeyService(served.registry.database, NullFeed())
    old = keys.create("predict", actor="tests")
    app = create_app(build_service(served.spec, served.settings, time_now), key_refresh_seconds=0.1)
    with TestClient(app) as client:
        assert client.get("/v2/models/credit", headers=bearer(old.token)).status_code == 200
        keys.revoke(old.key.id, actor="tests")
        new = create_key(url, "predict")

        def settled() -> bool:
            refused = client.get("/v2/models/credit", headers=bearer(old.token))
            accepted = client.get("/v2/models/credit", headers=bearer(new))
            return refused.status_code == 401 and accepted.status_code == 200

        assert eventually(settled, timeout=2.0)


def test_insecure_app_needs_no_key_and_says_so(
    served: Served, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(build_service(served.spec, served.settings, time_now), insecure=True)
    with caplog.at_level(logging.INFO), TestClient(app) as client:
        response = client.get("/metrics")

    assert response.status_code == 200
    assert "INSECURE MODE: no authentication" in caplog.text
    (line,) = (r.getMessage() for r in _access_lines(caplog))
    assert "key=- role=- method=GET path=/metrics status=200" in line


def test_every_route_has_an_access_rule(served: Served) -> None:
    app = served.app()
    paths = {getattr(route, "path", None) for route in app.routes}
    api = {p for p in paths if p is not None and not is_console_path(p)}

    assert api - set(ROUTE_RULES) - OPEN_PATHS == set()


def _whoami_client(key: ActiveKey) -> TestClient:
    """A bare app behind the middleware, with one route that has no access rule."""

    async def whoami(request: Request) -> JSONResponse:
        principal = request.state.principal
        return JSONResponse([principal.key_id, principal.role, request.state.request_id])

    routes = [Route("/whoami", whoami)]
    cache = KeyCache(lambda: [key], NullFeed())
    asyncio.run(cache.reload())
    middleware = [Middleware(AuthMiddleware, routes=routes, keys=cache)]
    return TestClient(Starlette(routes=routes, middleware=middleware))


def test_handlers_see_the_principal_and_request_id() -> None:
    admin = ActiveKey(KEY.id, "admin", None, KEY.secret_hash)

    response = _whoami_client(admin).get(
        "/whoami", headers={**bearer(TOKEN), "X-Request-Id": "r-1"}
    )

    assert response.json() == [KEY.id, "admin", "r-1"]


def test_route_without_a_rule_is_for_admin_keys_only() -> None:
    response = _whoami_client(KEY).get("/whoami", headers=bearer(TOKEN))

    assert_problem(response, 403, "forbidden")


def test_non_http_scopes_pass_through_untouched() -> None:
    seen: list[str] = []

    async def inner(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def receive() -> Message:
        return {"type": "websocket.connect"}

    async def send(message: Message) -> None:
        return None

    middleware = AuthMiddleware(inner, routes=[], keys=KeyCache(list, NullFeed()))
    asyncio.run(middleware({"type": "websocket", "path": "/ws", "headers": []}, receive, send))

    assert seen == ["websocket"]


# -- the console: a session cookie on /console paths only -----------------------------------

REVIEW_KEY = ActiveKey("fedcba9876543210", "review", None, hash_token("bst_fedcba9876543210_x"))
CONSOLE_PAGE = "/console/review/whoami"


def _console_client(*keys: ActiveKey) -> tuple[TestClient, Starlette]:
    """A bare app with one console page and one API route behind the middleware."""

    async def whoami(request: Request) -> JSONResponse:
        principal = request.state.principal
        session = request.state.console_session
        return JSONResponse([principal.key_id, principal.role, len(session.csrf_token)])

    routes = [Route(CONSOLE_PAGE, whoami), Route("/v1/review/tasks", whoami)]
    cache = KeyCache(lambda: list(keys), NullFeed())
    asyncio.run(cache.reload())
    middleware = [Middleware(AuthMiddleware, routes=routes, keys=cache)]
    app = Starlette(routes=routes, middleware=middleware)
    return TestClient(app), app


def test_console_page_authenticates_by_session_cookie() -> None:
    client, app = _console_client(REVIEW_KEY)
    client.cookies.set(SESSION_COOKIE, signer_for(app).issue(REVIEW_KEY))

    response = client.get(CONSOLE_PAGE)

    assert response.status_code == 200
    assert response.json() == [REVIEW_KEY.id, "review", 40]


@pytest.mark.parametrize(
    "cookie", [None, "", "garbage", "tampered", "expired", "other-secret"], ids=repr
)
def test_console_page_without_a_valid_session_redirects_to_sign_in(cookie: str | None) -> None:
    client, app = _console_client(REVIEW_KEY)
    good = signer_for(app).issue(REVIEW_KEY)
    values = {
        "tampered": good[:-1] + ("0" if good[-1] != "0" else "1"),
        "expired": signer_for(app).issue(REVIEW_KEY, now=time.time() - 13 * 3600),
        "other-secret": signer_for(Starlette()).issue(REVIEW_KEY),
    }
    if cookie is not None:
        client.cookies.set(SESSION_COOKIE, values.get(cookie, cookie))

    response = client.get(CONSOLE_PAGE, follow_redirects=False)

    assert response.status_code == 303
    assert response.headers["location"] == f"/console/review/sign-in?next={CONSOLE_PAGE}"


def test_console_session_of_an_unknown_key_redirects_to_sign_in() -> None:
    client, app = _console_client()  # the key is gone from the cache (revoked)
    client.cookies.set(SESSION_COOKIE, signer_for(app).issue(REVIEW_KEY))

    assert client.get(CONSOLE_PAGE, follow_redirects=False).status_code == 303


def test_console_refuses_a_role_that_may_not_review_with_a_403_page() -> None:
    client, app = _console_client(KEY)  # a predict key
    client.cookies.set(SESSION_COOKIE, signer_for(app).issue(KEY))

    response = client.get(CONSOLE_PAGE)

    assert response.status_code == 403
    assert response.headers["content-type"].startswith("text/html")
    assert "predict" in response.text


def test_console_ignores_bearer_tokens() -> None:
    client, _ = _console_client(KEY)

    response = client.get(CONSOLE_PAGE, headers=bearer(TOKEN), follow_redirects=False)

    assert response.status_code == 303


def test_session_cookie_does_not_authenticate_the_api() -> None:
    client, app = _console_client(REVIEW_KEY)
    client.cookies.set(SESSION_COOKIE, signer_for(app).issue(REVIEW_KEY))

    response = client.get("/v1/review/tasks")

    assert_problem(response, 401, "unauthorized")


# -- the key cache on its own -----------------------------------------------------------------


def eventually(check: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.02)
    return check()


class LoopbackFeed(ChangeFeed):
    """Delivers what it publishes to its own subscribers, in this process."""

    backend = "loopback"

    async def start(self) -> None:
        return

    def _send(self, message: str) -> None:
        self._deliver(message)

    async def _listen(self, ready: Callable[[], None]) -> None:
        raise NotImplementedError


def test_cache_authenticates_from_memory_only() -> None:
    reads: list[int] = []

    def load() -> list[ActiveKey]:
        reads.append(1)
        return [KEY]

    async def scenario() -> tuple[ActiveKey | None, ActiveKey | None]:
        cache = KeyCache(load, NullFeed(), refresh_seconds=60)
        await cache.start()
        try:
            return cache.authenticate(TOKEN), cache.authenticate(_wrong_secret(TOKEN))
        finally:
            await cache.stop()

    assert asyncio.run(scenario()) == (KEY, None)
    assert reads == [1]


def test_cache_drops_an_announced_revocation_even_before_a_fresh_read() -> None:
    feed = LoopbackFeed()

    async def scenario() -> tuple[ActiveKey | None, ActiveKey | None]:
        cache = KeyCache(lambda: [KEY], feed, refresh_seconds=0.05)  # a stale database
        await cache.start()
        try:
            feed.publish(KEYS_TOPIC, {"action": "revoked", "key_id": KEY.id})
            at_once = cache.authenticate(TOKEN)
            await asyncio.sleep(0.2)  # several re-reads that still list the key
            return at_once, cache.authenticate(TOKEN)
        finally:
            await cache.stop()

    assert asyncio.run(scenario()) == (None, None)


def test_cache_keeps_the_last_good_keys_when_a_re_read_fails(
    caplog: pytest.LogCaptureFixture,
) -> None:
    calls = iter([[KEY]])

    def load() -> list[ActiveKey]:
        for keys in calls:
            return keys
        raise StorageError("database error: OperationalError")

    async def scenario() -> ActiveKey | None:
        cache = KeyCache(load, NullFeed(), refresh_seconds=0.05)
        await cache.start()
        try:
            await asyncio.sleep(0.2)
            return cache.authenticate(TOKEN)
        finally:
            await cache.stop()

    with caplog.at_level(logging.WARNING, logger="bastion.server.auth"):
        assert asyncio.run(scenario()) == KEY
    assert "keeping the last good set" in caplog.text


def test_cache_start_fails_when_the_keys_cannot_be_read() -> None:
    def load() -> list[ActiveKey]:
        raise StorageError("database error: OperationalError")

    with pytest.raises(StorageError):
        asyncio.run(KeyCache(load, NullFeed()).start())


def test_cache_stop_leaves_no_task_behind() -> None:
    async def scenario() -> set[asyncio.Task[Any]]:
        cache = KeyCache(lambda: [KEY], LoopbackFeed(), refresh_seconds=0.01)
        await cache.start()
        await asyncio.sleep(0.05)
        await cache.stop()
        return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}

    assert asyncio.run(scenario()) == set()
