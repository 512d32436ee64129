"""Webhook notifications against a real local HTTP server: payload, retries, bounds, stop."""

from __future__ import annotations

import asyncio
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bastion.monitor.alerts import AlertEvaluator, Transition, alert_history
from bastion.monitor.notify import Notifier, slack_payload
from bastion.spec import Spec
from bastion.store import Database
from tests.support import free_port

START = datetime(2026, 3, 1, 12, tzinfo=UTC)


@dataclass
class Receiver:
    """A webhook endpoint: answers with the scripted statuses (then 200), records bodies."""

    url: str
    statuses: list[int] = field(default_factory=list)
    bodies: list[dict[str, Any]] = field(default_factory=list)
    hang_seconds: float = 0.0
    retry_after: str | None = None

    async def endpoint(self, request: Request) -> Response:
        self.bodies.append(orjson.loads(await request.body()))
        if self.hang_seconds:
            await asyncio.sleep(self.hang_seconds)
        status = self.statuses.pop(0) if self.statuses else 200
        headers = {"retry-after": self.retry_after} if self.retry_after and status >= 400 else {}
        return Response(status_code=status, headers=headers)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    port = free_port()
    receiver = Receiver(f"http://127.0.0.1:{port}/hook")
    app = Starlette(routes=[Route("/hook", receiver.endpoint, methods=["POST"])])
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the webhook receiver did not start")
        time.sleep(0.01)
    try:
        yield receiver
    finally:
        server.should_exit = True
        thread.join(timeout=10)


RULE = {"name": "feature_psi", "when": "features.x.psi > 0.2", "severity": "critical"}


def make_spec(url: str, *, max_attempts: int = 5, hooks: int = 1) -> Spec:
    webhook = {"url": url, "max_attempts": max_attempts, "timeout_seconds": 2}
    return Spec.model_validate(
        {
            "deployments": {
                "credit": {
                    "model": "credit:1",
                    "monitor": {"alerts": [RULE], "webhooks": [webhook] * hooks},
                }
            }
        }
    )


def fire(database: Database, spec: Spec, hour: int = 1, psi: float = 0.5) -> Transition:
    """Store one firing (or resolving) transition through the evaluator and return it."""
    ended = START + timedelta(hours=hour)
    window = {"started_at": START.isoformat(), "ended_at": ended.isoformat(), "rows": 800}
    (transition,) = AlertEvaluator(database, spec).evaluate_summary(
        "credit", {"features": {"x": {"psi": psi}}}, window=window, ended_at=ended
    )
    return transition


def notifier_for(spec: Spec, client: httpx.AsyncClient, database: Database, **kw: Any) -> Notifier:
    kw.setdefault("base_delay", 0.01)
    kw.setdefault("max_delay", 0.05)
    kw.setdefault("rng", random.Random(7))
    return Notifier(spec, client, database, link_base="https://bastion.example", **kw)


async def drained(notifier: Notifier, expected: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while notifier.delivered + notifier.failed < expected:
        if time.monotonic() > deadline:
            raise AssertionError("deliveries did not finish")
        await asyncio.sleep(0.01)


def test_notifier_posts_slack_json_and_records_delivery(
    database: Database, receiver: Receiver
) -> None:
    spec = make_spec(receiver.url)
    transition = fire(database, spec)

    async def scenario() -> None:
        async with httpx.AsyncClient() as client:
            notifier = notifier_for(spec, client, database)
            await notifier.start()
            assert notifier.submit(transition) == 1
            await drained(notifier, 1)
            await notifier.stop()

    asyncio.run(scenario())
    (body,) = receiver.bodies
    assert body["text"].startswith("[FIRING] critical: feature_psi on credit")
    fields = " ".join(f["text"] for f in body["blocks"][1]["fields"])
    for fact in ("credit", "feature_psi", "critical", '"features.x.psi":0.5', "800 rows"):
        assert fact in fields
    link = "https://bastion.example/v1/deployments/credit/monitor/alerts"
    assert body["attachments"][0]["title_link"] == link
    assert body["bastion"]["state"] == "firing"
    assert body["bastion"]["link"] == link
    (event,) = alert_history(database, "credit")
    assert event.attempts == 1
    assert event.notified_at is not None


def test_notifier_retries_server_errors_with_backoff(
    database: Database, receiver: Receiver
) -> None:
    receiver.statuses = [503, 429]
    receiver.retry_after = "0"
    spec = make_spec(receiver.url)
    transition = fire(database, spec)

    async def scenario() -> Notifier:
        async with httpx.AsyncClient() as client:
            notifier = notifier_for(spec, client, database)
            await notifier.start()
            notifier.submit(transition)
            await drained(notifier, 1)
            await notifier.stop()
            return notifier

    notifier = asyncio.run(scenario())
    assert (notifier.delivered, notifier.failed) == (1, 0)
    assert len(receiver.bodies) == 3
    (event,) = alert_history(database, "credit")
    assert event.attempts == 3
    assert event.notified_at is not None


def test_notifier_gives_up_after_max_attempts_and_on_client_errors(
    database: Database, receiver: Receiver
) -> None:
    receiver.statuses = [500, 500, 500, 404]
    spec = make_spec(receiver.url, max_attempts=3)
    firing = fire(database, spec, hour=1, psi=0.5)
    resolved = fire(database, spec, hour=2, psi=0.0)

    async def scenario() -> Notifier:
        async with httpx.AsyncClient() as client:
            notifier = notifier_for(spec, client, database, workers=1)
            await notifier.start()
            notifier.submit(firing)
            await drained(notifier, 1)
            notifier.submit(resolved)  # answered 404: final, not retried
            await drained(notifier, 2)
            await notifier.stop()
            return notifier

    notifier = asyncio.run(scenario())
    assert (notifier.delivered, notifier.failed) == (0, 2)
    assert len(receiver.bodies) == 4
    events = {e.to_state: e for e in alert_history(database, "credit")}
    assert (events["firing"].attempts, events["firing"].notified_at) == (3, None)
    assert (events["ok"].attempts, events["ok"].notified_at) == (1, None)


def test_notifier_unreachable_webhook_is_retried_then_dropped(database: Database) -> None:
    spec = make_spec(f"http://127.0.0.1:{free_port()}/hook", max_attempts=2)
    transition = fire(database, spec)

    async def scenario() -> Notifier:
        async with httpx.AsyncClient() as client:
            notifier = notifier_for(spec, client, database)
            await notifier.start()
            notifier.submit(transition)
            await drained(notifier, 1)
            await notifier.stop()
            return notifier

    assert asyncio.run(scenario()).failed == 1
    (event,) = alert_history(database, "credit")
    assert event.attempts == 2
    assert event.notified_at is None


def test_notifier_queue_drops_the_oldest_when_full(database: Database, receiver: Receiver) -> None:
    spec = make_spec(receiver.url)
    transitions = [fire(database, spec, hour=h, psi=0.5 if h % 2 else 0.0) for h in range(1, 6)]

    async def scenario() -> Notifier:
        async with httpx.AsyncClient() as client:
            notifier = notifier_for(spec, client, database, queue_size=2, workers=1)
            for transition in transitions:  # before start: nothing is sent yet
                notifier.submit(transition)
            assert notifier.pending == 2
            await notifier.start()
            await drained(notifier, 2)
            await notifier.stop()
            return notifier

    notifier = asyncio.run(scenario())
    assert notifier.dropped == 3
    sent = [body["bastion"]["event_id"] for body in receiver.bodies]
    assert sent == [t.event_id for t in transitions[-2:]]


def test_notifier_submit_from_a_worker_thread(database: Database, receiver: Receiver) -> None:
    """The evaluator runs in a worker thread; its submissions still reach the loop."""
    spec = make_spec(receiver.url, hooks=2)

    async def scenario() -> Notifier:
        async with httpx.AsyncClient() as client:
            notifier = notifier_for(spec, client, database)
            await notifier.start()
            evaluator = AlertEvaluator(database, spec, notifier)
            ended = START + timedelta(hours=1)
            await asyncio.get_running_loop().run_in_executor(
                None,
                lambda: evaluator.evaluate_summary(
                    "credit", {"features": {"x": {"psi": 0.9}}}, window={}, ended_at=ended
                ),
            )
            await drained(notifier, 2)
            await notifier.stop()
            return notifier

    assert asyncio.run(scenario()).delivered == 2
    assert len(receiver.bodies) == 2
    (event,) = alert_history(database, "credit")
    assert event.attempts == 2  # one per webhook


def test_notifier_stop_is_bounded_by_the_grace_period(
    database: Database, receiver: Receiver
) -> None:
    receiver.hang_seconds = 1.5
    spec = make_spec(receiver.url)
    transition = fire(database, spec)

    async def scenario() -> float:
        async with httpx.AsyncClient() as client:
            notifier = notifier_for(spec, client, database, grace_seconds=0.2)
            await notifier.start()
            notifier.submit(transition)
            await asyncio.sleep(0.1)  # the request is in flight
            started = time.monotonic()
            await notifier.stop()
            assert notifier.submit(transition) == 0  # stopped: nothing more is accepted
            return time.monotonic() - started

    assert asyncio.run(scenario()) < 1.0


def test_notifier_backoff_grows_is_jittered_and_capped() -> None:
    spec = make_spec("http://127.0.0.1:9/hook")
    notifier = Notifier(
        spec, httpx.AsyncClient(), base_delay=1.0, max_delay=8.0, rng=random.Random(1)
    )
    for attempt, step in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        delays = [notifier.delay(attempt) for _ in range(50)]
        assert all(step / 2 <= d <= step for d in delays)
        assert len(set(delays)) > 1  # jittered
    assert notifier.delay(1, retry_after=30.0) == 8.0  # Retry-After honoured within the cap


def test_slack_payload_resolved_without_link() -> None:
    transition = Transition(
        event_id=1,
        deployment="credit",
        rule="auc",
        severity="warning",
        from_state="firing",
        to_state="ok",
        at=START,
        summary=None,
        value={"estimated.roc_auc": 0.79},
        window={},
    )
    body = slack_payload(transition, None)
    assert body["text"] == "[RESOLVED] warning: auc on credit"
    assert body["attachments"][0]["color"] == "#2eb67d"
    assert all(block["type"] != "context" for block in body["blocks"])
