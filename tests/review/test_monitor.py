"""`ReviewMonitor`: review gauges and the cached depth, refreshed in the background."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bastion.monitor.metrics import ServingMetrics
from bastion.review import ReviewMonitor, ReviewQueue
from bastion.store import Database
from tests.review.cases import MovableClock, add_case

UNREACHABLE = "postgresql+psycopg://root@127.0.0.1:1/test?connect_timeout=1"


def _gauge(metrics: ServingMetrics, name: str, deployment: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"deployment": deployment})


def test_monitor_publishes_depth_age_and_overdue_per_deployment(
    database: Database, queue: ReviewQueue, metrics: ServingMetrics, clock: MovableClock
) -> None:
    add_case(database, sla_minutes=30)
    add_case(database, sla_minutes=240)
    clock.advance(minutes=45)
    monitor = ReviewMonitor(queue, metrics, interval_seconds=0.05)

    async def scenario() -> int:
        await monitor.start()
        add_case(database, deployment="fraud")
        await asyncio.sleep(0.3)
        await monitor.stop()
        return monitor.refreshes

    refreshes = asyncio.run(scenario())

    assert refreshes >= 2
    assert _gauge(metrics, "bastion_review_queue_depth", "credit") == 2
    assert _gauge(metrics, "bastion_review_oldest_task_age_seconds", "credit") == 45 * 60
    assert _gauge(metrics, "bastion_review_overdue_tasks", "credit") == 1
    assert _gauge(metrics, "bastion_review_queue_depth", "fraud") == 1
    assert (monitor.depth("credit"), monitor.depth("fraud"), monitor.depth("other")) == (2, 1, 0)


def test_note_created_counts_until_the_next_refresh(
    database: Database, queue: ReviewQueue, metrics: ServingMetrics
) -> None:
    monitor = ReviewMonitor(queue, metrics)

    async def scenario() -> tuple[int, int]:
        await monitor.refresh()
        monitor.note_created("credit", 3)
        noted = monitor.depth("credit")
        add_case(database)
        await monitor.refresh()
        return noted, monitor.depth("credit")

    assert asyncio.run(scenario()) == (3, 1)


def test_a_failed_refresh_keeps_the_last_values(
    database: Database,
    queue: ReviewQueue,
    metrics: ServingMetrics,
    clock: MovableClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    add_case(database)
    monitor = ReviewMonitor(queue, metrics)
    unreachable = Database(UNREACHABLE)

    async def scenario() -> bool:
        await monitor.refresh()
        queue.database = unreachable
        return await monitor.refresh()

    with caplog.at_level(logging.WARNING, logger="bastion.review.monitor"):
        ok = asyncio.run(scenario())
    unreachable.dispose()

    assert ok is False
    assert "keeping the last values" in caplog.text
    assert monitor.depth("credit") == 1
    assert _gauge(metrics, "bastion_review_queue_depth", "credit") == 1
