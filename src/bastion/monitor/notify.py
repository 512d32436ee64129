"""`Notifier`: alert transitions to webhooks, in the background, retried with backoff.

`submit` never blocks and never raises: it puts one delivery per webhook of the deployment
(``monitor.webhooks``) on a bounded queue, from the event loop or from a worker thread
(the alert evaluator runs in one). When the queue is full the oldest delivery is dropped
and counted in `dropped`: a burst of alerts must not grow memory without bound, and the
newest state is the one worth sending.

A few worker tasks POST each delivery as Slack-compatible JSON (`slack_payload`). Network
errors, timeouts, 408, 425, 429 and 5xx answers are retried up to the webhook's
``max_attempts`` with exponential backoff and jitter (a numeric ``Retry-After`` is
honoured, within the cap); other 4xx answers are final. The attempts and, on success, the
delivery time are written to the ``alert_events`` row. `stop` gives queued and in-flight
deliveries ``grace_seconds`` to finish, then cancels the rest and logs how many were lost.

Webhook URLs carry secrets (Slack's do), so logs name only the host.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from sqlalchemy import func, update

from bastion.monitor.alerts import Transition
from bastion.monitor.config import Webhook
from bastion.spec import Spec
from bastion.store import Database
from bastion.store.tables import AlertEventRow

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
#: answers worth another attempt (the receiver is busy or briefly broken)
RETRYABLE_STATUS = frozenset({408, 425, 429})
_COLORS = {"firing": {"critical": "#d00000", "warning": "#f2a900", "info": "#2d7ff9"}}
_RESOLVED_COLOR = "#2eb67d"
#: Slack rejects section texts longer than this
_MAX_TEXT = 2000


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Delivery:
    transition: Transition
    webhook: Webhook


def alert_link(base_url: str | None, deployment: str) -> str | None:
    """Where a reader of the message finds the alert's state and history (the API)."""
    if base_url is None:
        return None
    return f"{base_url.rstrip('/')}/v1/deployments/{deployment}/monitor/alerts"


def slack_payload(transition: Transition, link: str | None) -> dict[str, Any]:
    """A Slack-compatible message: ``text`` (the fallback line), ``blocks`` and
    ``attachments`` (the colour bar), plus a ``bastion`` object for other receivers."""
    t = transition
    status = "FIRING" if t.to_state == "firing" else "RESOLVED"
    headline = f"[{status}] {t.severity}: {t.rule} on {t.deployment}"
    if t.summary:
        headline += f" — {t.summary}"
    value = _short(orjson.dumps(t.value).decode())
    window = f"{t.window.get('started_at', '?')} → {t.window.get('ended_at', '?')}"
    if "rows" in t.window:
        window += f" ({t.window['rows']} rows"
        if "model_version" in t.window:
            window += f", {t.window.get('model_name', '')}:{t.window['model_version']}"
        window += ")"
    facts = [
        ("Deployment", t.deployment),
        ("Rule", t.rule),
        ("Severity", t.severity),
        ("State", f"{t.from_state} → {t.to_state}"),
        ("Value", value),
        ("Window", window),
    ]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": _short(f"*{headline}*")}},
        {
            "type": "section",
            "fields": [{"type": "mrkdwn", "text": _short(f"*{k}*\n{v}")} for k, v in facts],
        },
    ]
    if link is not None:
        blocks.append(
            {"type": "context", "elements": [{"type": "mrkdwn", "text": f"<{link}|Alert history>"}]}
        )
    color = _COLORS.get(t.to_state, {}).get(t.severity, _RESOLVED_COLOR)
    attachment: dict[str, Any] = {
        "color": color,
        "fallback": headline,
        "fields": [{"title": k, "value": v, "short": len(v) < 40} for k, v in facts],
        "ts": int(t.at.timestamp()),
    }
    if link is not None:
        attachment["title_link"] = link
        attachment["title"] = "Alert history"
    return {
        "text": headline,
        "blocks": blocks,
        "attachments": [attachment],
        "bastion": {
            "event_id": t.event_id,
            "deployment": t.deployment,
            "rule": t.rule,
            "severity": t.severity,
            "from_state": t.from_state,
            "state": t.to_state,
            "at": t.at.isoformat(),
            "value": t.value,
            "window": t.window,
            "link": link,
        },
    }


def _short(text: str) -> str:
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 1] + "…"


class Notifier:
    """Delivers alert transitions to each deployment's webhooks without blocking anyone.

    `client` is injected (tests hand in one that talks to a local server). `database`
    (None: nothing recorded) receives the attempts and delivery time of each event.
    `rng` drives the jitter; `link_base` is the server's public URL for the message link.
    """

    def __init__(
        self,
        spec: Spec,
        client: httpx.AsyncClient,
        database: Database | None = None,
        *,
        queue_size: int = 1000,
        workers: int = 4,
        base_delay: float = 0.5,
        max_delay: float = 60.0,
        grace_seconds: float = 5.0,
        link_base: str | None = None,
        rng: random.Random | None = None,
        clock: Clock = utcnow,
    ) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be ≥ 1, got {queue_size}")
        if workers < 1:
            raise ValueError(f"workers must be ≥ 1, got {workers}")
        if not 0 < base_delay <= max_delay:
            raise ValueError(
                f"need 0 < base_delay ≤ max_delay, got base_delay={base_delay}, "
                f"max_delay={max_delay}"
            )
        self.spec = spec
        self.client = client
        self.database = database
        self.queue_size = queue_size
        self.workers = workers
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.grace_seconds = grace_seconds
        self.link_base = link_base
        self.clock = clock
        self._rng = rng or random.Random()
        self._queue: deque[Delivery] = deque()
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = False
        #: deliveries dropped because the queue was full, delivered, and given up on
        self.dropped = 0
        self.delivered = 0
        self.failed = 0

    @property
    def pending(self) -> int:
        with self._lock:
            return len(self._queue)

    def submit(self, transition: Transition) -> int:
        """Queue the transition for each of its deployment's webhooks; returns how many.

        Thread-safe and non-blocking. After `stop` nothing more is accepted.
        """
        deployment = self.spec.deployments.get(transition.deployment)
        if self._closing or deployment is None or deployment.monitor is None:
            return 0
        hooks = deployment.monitor.webhooks
        with self._lock:
            for webhook in hooks:
                if len(self._queue) >= self.queue_size:
                    self._queue.popleft()
                    self.dropped += 1
                    logger.warning("alert notification queue full; dropped the oldest delivery")
                self._queue.append(Delivery(transition, webhook))
        if hooks and self._loop is not None and self._wake is not None:
            with contextlib.suppress(RuntimeError):  # the loop closed under us: nothing to wake
                self._loop.call_soon_threadsafe(self._wake.set)
        return len(hooks)

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._closing = False
        self._tasks = [
            asyncio.create_task(self._work(), name=f"alert-notifier-{i}")
            for i in range(self.workers)
        ]
        if self.pending:
            self._wake.set()

    async def stop(self) -> None:
        """Stop accepting; give queued and in-flight deliveries `grace_seconds`, then cancel."""
        self._closing = True
        tasks, self._tasks = self._tasks, []
        if self._wake is not None:
            self._wake.set()
        if not tasks:
            return
        _, unfinished = await asyncio.wait(tasks, timeout=self.grace_seconds)
        for task in unfinished:
            task.cancel()
        for task in unfinished:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        lost = self.pending + len(unfinished)
        if lost:
            logger.warning("alert notifier stopped with about %d deliveries unsent", lost)

    def delay(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds before retry number `attempt` (1-based): exponential, capped, jittered
        between half and all of the step so replicas do not retry in step."""
        step = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        wait: float = step / 2 + self._rng.uniform(0, step / 2)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait

    def _pop(self) -> Delivery | None:
        with self._lock:
            return self._queue.popleft() if self._queue else None

    async def _work(self) -> None:
        wake = self._wake
        if wake is None:
            raise RuntimeError("Notifier.start() sets the wake event first")
        while True:
            delivery = self._pop()
            if delivery is None:
                if self._closing:
                    return
                wake.clear()
                delivery = self._pop()  # a submit between the pop and the clear
                if delivery is None:
                    await wake.wait()
                    continue
            try:
                await self._deliver(delivery)
            except asyncio.CancelledError:
                raise
            except Exception:  # a bug here must not end the worker
                logger.exception("alert notification failed unexpectedly")

    async def _deliver(self, delivery: Delivery) -> None:
        t, webhook = delivery.transition, delivery.webhook
        host = httpx.URL(webhook.url).host
        link = alert_link(self.link_base, t.deployment)
        body = orjson.dumps(slack_payload(t, link))
        headers = {"content-type": "application/json"}
        attempts, ok = 0, False
        while attempts < webhook.max_attempts:
            attempts += 1
            retry_after: float | None = None
            try:
                response = await self.client.post(
                    webhook.url, content=body, headers=headers, timeout=webhook.timeout_seconds
                )
            except httpx.HTTPError as exc:
                reason = type(exc).__name__
            else:
                if response.is_success:
                    ok = True
                    break
                reason = f"HTTP {response.status_code}"
                if not (response.status_code >= 500 or response.status_code in RETRYABLE_STATUS):
                    break
                retry_after = _retry_after(response)
            if attempts < webhook.max_attempts:
                logger.info("webhook %s: %s; retrying (attempt %d)", host, reason, attempts)
                await asyncio.sleep(self.delay(attempts, retry_after))
        if ok:
            self.delivered += 1
        else:
            self.failed += 1
            logger.warning(
                "alert %s of %s not delivered to %s after %d attempts (%s)",
                t.rule,
                t.deployment,
                host,
                attempts,
                reason,
            )
        await self._record(t.event_id, attempts, self.clock() if ok else None)

    async def _record(self, event_id: int, attempts: int, delivered_at: datetime | None) -> None:
        database = self.database
        if database is None:
            return

        def write() -> None:
            # One UPDATE adding to the stored count: deliveries of one event to several
            # webhooks finish concurrently, and a read-then-write would lose one of them
            # (SQLite has no row locks to serialise it).
            values: dict[str, Any] = {"attempts": AlertEventRow.attempts + attempts}
            if delivered_at is not None:
                values["notified_at"] = func.coalesce(AlertEventRow.notified_at, delivered_at)
            with database.transaction() as session:
                session.execute(
                    update(AlertEventRow).where(AlertEventRow.id == event_id).values(**values)
                )

        try:
            await asyncio.get_running_loop().run_in_executor(None, write)
        except Exception as exc:  # the message went out (or not) either way
            logger.warning("could not record the delivery of alert event %d: %s", event_id, exc)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None  # an HTTP date: the backoff decides
