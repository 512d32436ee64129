"""Change feeds on the real PostgreSQL and Redis servers: delivery, reconnects, clean stops."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
import redis

from bastion.store.notify import (
    Change,
    ChangeFeed,
    ChangeFeedError,
    NullFeed,
    PostgresFeed,
    RedisFeed,
    open_change_feed,
)


def _conninfo(postgres_url: str) -> str:
    return postgres_url.replace("postgresql+psycopg://", "postgresql://")


@dataclass
class Backend:
    """Makes feeds of one backend, all on one channel, and can cut a listener's connection."""

    make: Callable[[], ChangeFeed]
    cut: Callable[[ChangeFeed], None]


def _cut_postgres(conninfo: str) -> Callable[[ChangeFeed], None]:
    def cut(feed: ChangeFeed) -> None:
        with psycopg.connect(conninfo, autocommit=True) as connection:
            killed = connection.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (feed.listener_name,),
            ).fetchall()
        assert killed, "the listener's connection was not found"

    return cut


def _cut_redis(url: str) -> Callable[[ChangeFeed], None]:
    def cut(feed: ChangeFeed) -> None:
        client = redis.Redis.from_url(url)
        try:
            ids = [c["id"] for c in client.client_list() if c.get("name") == feed.listener_name]
            for client_id in ids:
                client.client_kill_filter(_id=client_id)
        finally:
            client.close()
        assert ids, "the listener's connection was not found"

    return cut


@pytest.fixture(params=["postgresql", "redis"])
def backend(request: pytest.FixtureRequest) -> Backend:
    """Feeds on a channel of their own, so tests running at the same time do not cross-talk."""
    namespace = f"test_{uuid.uuid4().hex[:12]}"
    if request.param == "postgresql":
        conninfo = _conninfo(request.getfixturevalue("postgres_url"))
        return Backend(
            lambda: PostgresFeed(conninfo, namespace, keepalive_seconds=0.2),
            _cut_postgres(conninfo),
        )
    url: str = request.getfixturevalue("redis_url")
    return Backend(lambda: RedisFeed(url, namespace, keepalive_seconds=0.2), _cut_redis(url))


class Inbox:
    """Collects the changes a subscriber receives; `wait` returns the first matching one."""

    def __init__(self) -> None:
        self.changes: list[Change] = []
        self._arrived = asyncio.Event()

    def __call__(self, change: Change) -> None:
        self.changes.append(change)
        self._arrived.set()

    async def wait(self, predicate: Callable[[Change], bool], timeout: float) -> Change:
        deadline = time.monotonic() + timeout
        while True:
            for change in self.changes:
                if predicate(change):
                    return change
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no matching change within {timeout} s: {self.changes}")
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._arrived.wait(), remaining)


def _is_message(change: Change) -> bool:
    return not change.resync


def test_published_change_reaches_a_subscriber_within_one_second(backend: Backend) -> None:
    async def scenario() -> tuple[Change, float]:
        listener, publisher = backend.make(), backend.make()
        inbox = Inbox()
        listener.subscribe("keys", inbox)
        await listener.start()
        try:
            started = time.monotonic()
            await asyncio.to_thread(publisher.publish, "keys", {"key_id": "k1"})
            change = await inbox.wait(_is_message, timeout=1.0)
            return change, time.monotonic() - started
        finally:
            await listener.stop()
            publisher.close()

    change, elapsed = asyncio.run(scenario())

    assert change == Change("keys", {"key_id": "k1"})
    assert elapsed < 1.0


def test_subscribers_hear_only_their_topic(backend: Backend) -> None:
    async def scenario() -> list[Change]:
        feed = backend.make()
        inbox = Inbox()
        feed.subscribe("keys", inbox)
        await feed.start()
        try:
            await asyncio.to_thread(feed.publish, "spec", {"n": 1})
            await asyncio.to_thread(feed.publish, "keys", {"n": 2})
            await inbox.wait(_is_message, timeout=1.0)
            return [c for c in inbox.changes if not c.resync]
        finally:
            await feed.stop()

    assert asyncio.run(scenario()) == [Change("keys", {"n": 2})]


def test_connecting_tells_subscribers_to_resync(backend: Backend) -> None:
    async def scenario() -> Change:
        feed = backend.make()
        inbox = Inbox()
        feed.subscribe("keys", inbox)
        await feed.start()
        try:
            assert feed.connected
            return await inbox.wait(lambda c: c.resync, timeout=1.0)
        finally:
            await feed.stop()

    assert asyncio.run(scenario()) == Change("keys", resync=True)


def test_a_failing_subscriber_does_not_stop_delivery(backend: Backend) -> None:
    def broken(change: Change) -> None:
        raise RuntimeError("subscriber bug")

    async def scenario() -> Change:
        feed = backend.make()
        inbox = Inbox()
        feed.subscribe("keys", broken)
        feed.subscribe("keys", inbox)
        await feed.start()
        try:
            await asyncio.to_thread(feed.publish, "keys", {"n": 1})
            return await inbox.wait(_is_message, timeout=1.0)
        finally:
            await feed.stop()

    assert asyncio.run(scenario()) == Change("keys", {"n": 1})


def test_listener_reconnects_resyncs_and_delivers_again(backend: Backend) -> None:
    async def scenario() -> Change:
        feed = backend.make()
        inbox = Inbox()
        feed.subscribe("keys", inbox)
        await feed.start()
        try:
            await inbox.wait(lambda c: c.resync, timeout=1.0)
            inbox.changes.clear()
            await asyncio.to_thread(backend.cut, feed)
            await inbox.wait(lambda c: c.resync, timeout=5.0)
            await asyncio.to_thread(feed.publish, "keys", {"after": "reconnect"})
            return await inbox.wait(_is_message, timeout=1.0)
        finally:
            await feed.stop()

    assert asyncio.run(scenario()) == Change("keys", {"after": "reconnect"})


def test_stop_ends_the_listener_and_leaves_no_task(backend: Backend) -> None:
    async def scenario() -> set[asyncio.Task[object]]:
        feed = backend.make()
        await feed.start()
        await feed.stop()
        await feed.stop()  # stopping twice is harmless
        return {t for t in asyncio.all_tasks() if t is not asyncio.current_task()}

    assert asyncio.run(scenario()) == set()


@pytest.mark.parametrize(
    "feed",
    [
        PostgresFeed("postgresql://root@127.0.0.1:1/test"),
        RedisFeed("redis://127.0.0.1:1/0"),
    ],
    ids=["postgresql", "redis"],
)
def test_unreachable_server_is_a_change_feed_error(feed: ChangeFeed) -> None:
    with pytest.raises(ChangeFeedError, match="could not send a change notification"):
        feed.publish("keys", {"n": 1})


@pytest.mark.parametrize(
    "feed",
    [
        PostgresFeed("postgresql://root@127.0.0.1:1/test"),
        RedisFeed("redis://127.0.0.1:1/0"),
    ],
    ids=["postgresql", "redis"],
)
def test_unreachable_listener_keeps_retrying_and_stops_cleanly(feed: ChangeFeed) -> None:
    async def scenario() -> bool:
        await feed.start()  # returns after the first (failed) attempt
        connected = feed.connected
        await asyncio.sleep(0.3)
        await feed.stop()
        return connected

    assert asyncio.run(scenario()) is False


def test_oversized_message_is_refused() -> None:
    with pytest.raises(ValueError, match="under 7999 bytes"):
        NullFeed().publish("keys", {"blob": "x" * 8000})


def test_open_change_feed_prefers_redis_then_postgresql(tmp_path: Path) -> None:
    postgres = "postgresql+psycopg://bastion:hunter2@db:5432/bastion"
    sqlite = f"sqlite:///{tmp_path / 'bastion.db'}"

    assert isinstance(open_change_feed(postgres, "redis://cache:6379/0"), RedisFeed)
    assert isinstance(open_change_feed(sqlite, "redis://cache:6379/0"), RedisFeed)
    assert isinstance(open_change_feed(postgres, None), PostgresFeed)
    assert isinstance(open_change_feed(sqlite, None), NullFeed)


def test_feed_repr_masks_passwords() -> None:
    feeds = [
        open_change_feed("postgresql://bastion:hunter2@db:5432/bastion", None),
        open_change_feed("sqlite://", "redis://:hunter2@cache:6379/0"),
    ]

    for feed in feeds:
        assert "hunter2" not in repr(feed)
