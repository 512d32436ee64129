"""The monitor as the server runs it: windows, alert evaluation and webhook delivery together.

Built only when some deployment has a ``monitor`` section. The `MonitorJob` computes and
stores windows; each stored window goes to the `AlertEvaluator` (when some deployment
has alert rules), whose firing and resolved transitions go to the `Notifier` (when some
deployment has webhooks). Start order is notifier, then job; stop order is the reverse,
so no transition is produced after its deliverer stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import httpx

from bastion.monitor.alerts import AlertEvaluator
from bastion.monitor.job import MonitorJob
from bastion.monitor.metrics import ServingMetrics
from bastion.monitor.notify import Notifier
from bastion.monitor.results import WindowResult
from bastion.monitor.summary import window_summary
from bastion.monitor.windows import WindowService
from bastion.registry import Registry
from bastion.spec import Spec

Clock = Callable[[], datetime]


class MonitorRunner:
    """The job, the evaluator and the notifier of one server, started and stopped as one."""

    def __init__(self, spec: Spec, registry: Registry, metrics: ServingMetrics, clock: Clock):
        monitored = [d.monitor for d in spec.deployments.values() if d.monitor is not None]
        self.windows = WindowService(registry.database, registry, clock)
        self._client: httpx.AsyncClient | None = None
        self.notifier: Notifier | None = None
        if any(m.webhooks for m in monitored):
            self._client = httpx.AsyncClient()
            self.notifier = Notifier(spec, self._client, registry.database, clock=clock)
        self.evaluator: AlertEvaluator | None = None
        if any(m.alerts for m in monitored):
            self.evaluator = AlertEvaluator(
                registry.database, spec, self.notifier, clock, summarize=self.summary
            )
        self.job = MonitorJob(
            self.windows,
            spec,
            metrics,
            clock,
            on_window=None if self.evaluator is None else self.evaluator.evaluate,
        )

    def summary(self, result: WindowResult) -> dict[str, Any]:
        """The alert rules' view of a window, with the version's reference metrics."""
        reference = self.windows.reference_metrics(result.model_name, result.model_version)
        return window_summary(result, reference)

    async def start(self) -> None:
        if self.notifier is not None:
            await self.notifier.start()
        await self.job.start()

    async def stop(self) -> None:
        await self.job.stop()
        if self.notifier is not None:
            await self.notifier.stop()
        if self._client is not None:
            await self._client.aclose()
