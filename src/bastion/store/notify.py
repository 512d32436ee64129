"""Change notifications: tell every replica, within a second, that shared state changed.

A `ChangeFeed` carries small JSON messages on named topics (``keys`` today) between the
processes that share one database. Messages are hints, never the source of truth: a
subscriber that hears one re-reads what changed from the database.

- Publishing is a short blocking call that works without `start()`, so the CLI can
  publish right after it commits a change.
- `start()` begins listening in a background task and calls each topic's subscribers on
  the event loop; `stop()` ends that task and closes its connection.
- A listener that loses its connection reconnects with backoff. Every time it (re)connects
  it calls each subscriber with a *resync* `Change`, because messages sent while it was
  away are lost: the subscriber then re-reads everything.

Backends, chosen by `open_change_feed`: Redis pub/sub when a Redis URL is configured;
PostgreSQL LISTEN/NOTIFY when the database is PostgreSQL; otherwise `NullFeed`, which
delivers nothing and leaves readers to their periodic re-read. Driver errors become
`ChangeFeedError` here and never travel further.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import orjson
import psycopg
import redis
import redis.asyncio
from psycopg import sql

from bastion.errors import StorageError
from bastion.store.database import normalize_url

logger = logging.getLogger(__name__)

#: the channel every Bastion process of one installation shares (topics travel inside)
DEFAULT_NAMESPACE = "bastion"
#: PostgreSQL refuses NOTIFY payloads of 8000 bytes or more
MAX_MESSAGE_BYTES = 7999
#: reconnect backoff bounds, in seconds
MIN_BACKOFF = 0.1
MAX_BACKOFF = 5.0
#: how long a quiet connection waits before it checks that it is still alive, in seconds
KEEPALIVE_SECONDS = 10.0
CONNECT_TIMEOUT_SECONDS = 5


@dataclass
class ChangeFeedError(StorageError):
    """A change notification could not be sent, or the listener lost its connection."""

    type: str = "change-feed-unavailable"
    title: str = "Change notifications unavailable"


@dataclass(frozen=True)
class Change:
    """One message on a topic; `resync` means "messages may have been lost, re-read all"."""

    topic: str
    payload: dict[str, Any] = field(default_factory=dict)
    resync: bool = False


Subscriber = Callable[[Change], None]


class ChangeFeed(ABC):
    """Publish small JSON messages on topics; deliver them to subscribers in every process.

    Subscribers are plain functions called on the event loop: they must not block (schedule
    the re-read, don't do it inline). A subscriber that raises is logged and skipped.
    """

    backend: ClassVar[str]

    def __init__(self, namespace: str = DEFAULT_NAMESPACE) -> None:
        self.channel = namespace
        self.connected = False
        self._subscribers: dict[str, list[Subscriber]] = {}
        self._task: asyncio.Task[None] | None = None

    @property
    def listener_name(self) -> str:
        """The name the listener's connection carries on the server (to find it in ops)."""
        return f"bastion-feed:{self.channel}"[:63]

    def subscribe(self, topic: str, callback: Subscriber) -> None:
        self._subscribers.setdefault(topic, []).append(callback)

    def unsubscribe(self, topic: str, callback: Subscriber) -> None:
        with contextlib.suppress(KeyError, ValueError):
            self._subscribers[topic].remove(callback)

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        """Send `payload` to every listening process (this one included). Blocks briefly."""
        message = orjson.dumps({"topic": topic, "payload": payload})
        if len(message) > MAX_MESSAGE_BYTES:
            raise ValueError(
                f"a change message must stay under {MAX_MESSAGE_BYTES} bytes, got {len(message)}"
            )
        self._send(message.decode())

    async def start(self) -> None:
        """Start listening; returns after the first connection attempt, successful or not."""
        if self._task is not None:
            return
        attempted = asyncio.Event()
        self._task = asyncio.create_task(self._run(attempted), name=f"{self.backend}-change-feed")
        await attempted.wait()

    async def stop(self) -> None:
        """Stop listening and close the listener's connection; then close the publisher."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.close()

    def close(self) -> None:  # noqa: B027 - a hook: only some backends hold a publisher
        """Release what publishing holds open (nothing, unless a backend says otherwise)."""

    @abstractmethod
    def _send(self, message: str) -> None:
        """Send one encoded message; raise `ChangeFeedError` on any driver error."""

    @abstractmethod
    async def _listen(self, ready: Callable[[], None]) -> None:
        """Connect, call `ready()` once subscribed, then deliver until the connection fails.

        Raises `ChangeFeedError` when the connection is lost; never returns otherwise.
        """

    async def _run(self, attempted: asyncio.Event) -> None:
        delay = MIN_BACKOFF
        quiet = False  # after one failure is logged, stay quiet until the next success

        def ready() -> None:
            nonlocal delay, quiet
            if quiet:
                logger.warning("%s change feed reconnected", self.backend)
            self.connected, delay, quiet = True, MIN_BACKOFF, False
            attempted.set()
            self._resync()

        while True:
            try:
                await self._listen(ready)
            except Exception as exc:  # the loop must outlive every failure but cancellation
                if not quiet:
                    logger.warning(
                        "%s change feed is not connected (%s); retrying, and relying on the "
                        "periodic re-read meanwhile",
                        self.backend,
                        exc,
                    )
                quiet = True
            self.connected = False
            attempted.set()
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_BACKOFF)

    def _deliver(self, raw: str | bytes) -> None:
        try:
            message = orjson.loads(raw)
            change = Change(str(message["topic"]), dict(message.get("payload") or {}))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            logger.warning("ignored a malformed change message on %s", self.channel)
            return
        self._dispatch(change)

    def _resync(self) -> None:
        for topic in list(self._subscribers):
            self._dispatch(Change(topic, resync=True))

    def _dispatch(self, change: Change) -> None:
        for callback in list(self._subscribers.get(change.topic, ())):
            try:
                callback(change)
            except Exception:
                logger.exception("a subscriber to %r failed", change.topic)


class NullFeed(ChangeFeed):
    """No notifications: every reader relies on its periodic re-read."""

    backend = "none"

    async def start(self) -> None:
        return

    def _send(self, message: str) -> None:
        return

    async def _listen(self, ready: Callable[[], None]) -> None:  # pragma: no cover - unused
        await asyncio.Event().wait()

    def __repr__(self) -> str:
        return "NullFeed()"


class PostgresFeed(ChangeFeed):
    """PostgreSQL LISTEN/NOTIFY on one channel of the database (psycopg 3, async listener)."""

    backend = "postgresql"

    def __init__(
        self,
        conninfo: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        super().__init__(namespace)
        self._conninfo = conninfo
        self._keepalive = keepalive_seconds

    def __repr__(self) -> str:
        masked = normalize_url(self._conninfo).render_as_string(hide_password=True)
        return f"PostgresFeed({masked!r}, channel={self.channel!r})"

    def _send(self, message: str) -> None:
        try:
            with psycopg.connect(
                self._conninfo, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS
            ) as connection:
                connection.execute("SELECT pg_notify(%s, %s)", (self.channel, message))
        except psycopg.Error as exc:
            raise ChangeFeedError(
                f"could not send a change notification through PostgreSQL: {type(exc).__name__}"
            ) from exc

    async def _listen(self, ready: Callable[[], None]) -> None:
        try:
            connection = await psycopg.AsyncConnection.connect(
                self._conninfo,
                autocommit=True,
                connect_timeout=CONNECT_TIMEOUT_SECONDS,
                application_name=self.listener_name,
            )
            async with connection:
                await connection.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self.channel)))
                ready()
                while True:
                    async for notify in connection.notifies(timeout=self._keepalive):
                        self._deliver(notify.payload)
                    # Quiet for a while: make sure the connection is still there.
                    await connection.execute("SELECT 1")
        except psycopg.Error as exc:
            raise ChangeFeedError(f"PostgreSQL listener failed: {type(exc).__name__}") from exc


class RedisFeed(ChangeFeed):
    """Redis pub/sub on one channel (redis-py; asyncio listener, blocking publisher)."""

    backend = "redis"

    def __init__(
        self,
        url: str,
        namespace: str = DEFAULT_NAMESPACE,
        *,
        keepalive_seconds: float = KEEPALIVE_SECONDS,
    ) -> None:
        super().__init__(namespace)
        self._url = url
        self._keepalive = keepalive_seconds
        self._publisher: redis.Redis | None = None

    def __repr__(self) -> str:
        masked = normalize_url(self._url).render_as_string(hide_password=True)
        return f"RedisFeed({masked!r}, channel={self.channel!r})"

    def _send(self, message: str) -> None:
        try:
            if self._publisher is None:
                self._publisher = redis.Redis.from_url(
                    self._url,
                    socket_timeout=CONNECT_TIMEOUT_SECONDS,
                    socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
                )
            self._publisher.publish(self.channel, message)
        except redis.RedisError as exc:
            raise ChangeFeedError(
                f"could not send a change notification through Redis: {type(exc).__name__}"
            ) from exc

    def close(self) -> None:
        publisher, self._publisher = self._publisher, None
        if publisher is not None:
            publisher.close()

    async def _listen(self, ready: Callable[[], None]) -> None:
        client = redis.asyncio.Redis.from_url(
            self._url,
            socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
            client_name=self.listener_name,
        )
        pubsub = client.pubsub()
        try:
            await pubsub.subscribe(self.channel)
            while True:
                message = await pubsub.get_message(timeout=self._keepalive)
                if message is None:
                    # Quiet for a while: make sure the connection is still there.
                    await pubsub.ping()
                elif message["type"] == "subscribe":
                    ready()  # Redis confirmed: every later PUBLISH reaches this listener
                elif message["type"] == "message":
                    self._deliver(message["data"])
        except (redis.RedisError, OSError) as exc:
            raise ChangeFeedError(f"Redis listener failed: {type(exc).__name__}") from exc
        finally:
            with contextlib.suppress(redis.RedisError, OSError):
                await pubsub.aclose()  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
                await client.aclose()


def open_change_feed(
    database_url: str, redis_url: str | None, *, namespace: str = DEFAULT_NAMESPACE
) -> ChangeFeed:
    """The feed for this installation: Redis if configured, else PostgreSQL, else none."""
    if redis_url:
        return RedisFeed(redis_url, namespace)
    url = normalize_url(database_url)
    if url.get_backend_name() == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        return PostgresFeed(conninfo, namespace)
    return NullFeed(namespace)
