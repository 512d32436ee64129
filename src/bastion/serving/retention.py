"""The retention job: deletes decisions older than each deployment's `retention_days`.

It runs inside `bastion serve` once at start and then every `interval_seconds`, in a
worker thread, never on the request path. Several replicas may run it at once: the delete
is idempotent.
"""

from __future__ import annotations

import asyncio
import logging

from bastion.serving.subjects import SubjectService

logger = logging.getLogger(__name__)

HOURLY = 3600.0


class RetentionJob:
    def __init__(
        self,
        subjects: SubjectService,
        retention_days: dict[str, int],
        *,
        interval_seconds: float = HOURLY,
    ) -> None:
        if interval_seconds <= 0:
            raise ValueError(f"interval_seconds must be > 0, got {interval_seconds}")
        self.subjects = subjects
        self.retention_days = dict(retention_days)
        self.interval_seconds = interval_seconds
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.runs = 0

    async def start(self) -> None:
        if self.retention_days and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="retention")

    async def stop(self) -> None:
        """Let a purge in progress finish, then stop."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while not self._stop.is_set():
            try:
                removed = await loop.run_in_executor(
                    None, self.subjects.purge_expired, self.retention_days
                )
            except Exception:
                logger.exception("retention purge failed; retrying at the next interval")
            else:
                self.runs += 1
                if any(removed.values()):
                    logger.info("retention removed decisions: %s", removed)
            try:
                await asyncio.wait_for(self._stop.wait(), self.interval_seconds)
            except TimeoutError:
                continue
