"""`ReviewMonitor`: the review gauges and the queue depth the request path reads.

Every `interval_seconds` one grouped query counts each deployment's unresolved, overdue and
oldest tasks; the result sets ``bastion_review_queue_depth``,
``bastion_review_oldest_task_age_seconds`` and ``bastion_review_overdue_tasks`` and is
kept as a per-deployment depth that the request path checks against ``policy.review.capacity``
without a database round trip. Between refreshes the request path adds the tasks it creates
(`note_created`), so a burst cannot overshoot the capacity by a whole interval's worth.

A refresh that fails (database unreachable) is logged and the last values stay: a stale
depth for a few seconds is better than no decisions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from bastion.monitor.metrics import ServingMetrics
from bastion.review.queue import ReviewQueue
from bastion.review.views import QueueStats

logger = logging.getLogger(__name__)


class ReviewMonitor:
    def __init__(
        self, queue: ReviewQueue, metrics: ServingMetrics, interval_seconds: float = 5.0
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be > 0, got {interval_seconds}")
        self.queue = queue
        self.metrics = metrics
        self.interval_seconds = interval_seconds
        self._depth: dict[str, int] = {}
        self._task: asyncio.Task[None] | None = None
        #: completed refreshes (tests and health checks read it)
        self.refreshes = 0

    def depth(self, deployment: str) -> int:
        """Unresolved tasks of `deployment` as of the last refresh, plus those created since."""
        return self._depth.get(deployment, 0)

    def note_created(self, deployment: str, count: int = 1) -> None:
        """Count tasks the request path just created, until the next refresh recounts."""
        self._depth[deployment] = self._depth.get(deployment, 0) + count

    async def start(self) -> None:
        """Refresh once (a failure is logged, not raised), then keep refreshing."""
        await self.refresh()
        self._task = asyncio.create_task(self._run(), name="review-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def refresh(self) -> bool:
        """Recount and publish; returns whether it worked (failures keep the last values)."""
        loop = asyncio.get_running_loop()
        try:
            stats = await loop.run_in_executor(
                None, lambda: self.queue.stats_by_deployment(resolved=False)
            )
        except Exception as exc:
            logger.warning(
                "could not refresh the review queue counts (%s); keeping the last values",
                exc,
            )
            return False
        self._publish(stats)
        self.refreshes += 1
        return True

    def _publish(self, stats: dict[str, QueueStats]) -> None:
        # Deployments of the spec, those with tasks, and those shown before (now emptied):
        # a label is only ever set to a value, never left stale.
        names = set(self.queue.spec.deployments) | set(stats) | set(self._depth)
        depth: dict[str, int] = {}
        for name in sorted(names):
            current = stats.get(name, QueueStats(name))
            depth[name] = current.depth
            self.metrics.review_queue_depth.labels(name).set(current.depth)
            self.metrics.review_oldest_age.labels(name).set(current.oldest_age_seconds)
            self.metrics.review_overdue.labels(name).set(current.overdue)
        self._depth = depth

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_seconds)
            await self.refresh()
