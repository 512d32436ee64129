"""The background monitor: every ``interval_seconds``, each monitored deployment's latest
window is computed, stored, published as Prometheus gauges and handed to `on_window`.

Windows are computed on one dedicated worker thread, never on the event loop and never on
the default executor the request path uses for its database calls, so a long window cannot
delay a request. A window that fails is logged and counted
(``bastion_monitor_window_failures``); the loop goes on. `stop()` interrupts a window in
progress between two chunks of decisions and returns once the worker is idle.

Every replica of a server runs the job over the shared database; a replica skips a window
when another stored one less than half an interval ago, so one window per interval is kept.
Gauges carry the model version as a label; when another version serves a deployment, the
old version's series are removed, so the label sets stay bounded.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import Gauge

from bastion.monitor.metrics import ServingMetrics
from bastion.monitor.results import WindowResult
from bastion.monitor.summary import METRICS
from bastion.monitor.windows import WindowService
from bastion.spec import Deployment, Spec

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]
#: called with each stored window, on the job's worker thread (alert evaluation plugs in here)
OnWindow = Callable[[WindowResult], Any]


class _Stopped(Exception):
    """Raised inside a window's computation when the job is stopping."""


class MonitorJob:
    """Computes and stores the latest window of every deployment with a ``monitor`` section.

    The window ends at `clock()` when it is computed; `on_window` runs on the worker thread
    after the window is stored (its exceptions are logged, never stop the loop).
    """

    def __init__(
        self,
        windows: WindowService,
        spec: Spec,
        metrics: ServingMetrics,
        clock: Clock,
        *,
        on_window: OnWindow | None = None,
    ) -> None:
        self.windows = windows
        self.clock = clock
        self.metrics = metrics
        self.on_window = on_window
        self.deployments = {
            name: deployment
            for name, deployment in spec.deployments.items()
            if deployment.monitor is not None
        }
        self.runs = 0
        self._stop = asyncio.Event()
        self._halt = threading.Event()
        self._task: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None
        # per deployment: the label sets each gauge carries now (to remove stale ones)
        self._series: dict[str, dict[str, set[tuple[str, ...]]]] = {}

    async def start(self) -> None:
        if self.deployments and self._task is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="bastion-monitor")
            self._task = asyncio.get_running_loop().create_task(self._run(), name="monitor")

    async def stop(self) -> None:
        """Interrupt a window in progress (between chunks), then stop."""
        self._stop.set()
        self._halt.set()
        if self._task is not None:
            await self._task
            self._task = None
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        # The first window one interval after start: a starting server has better things
        # to do, and a restart does not recompute the window the last run just stored.
        due = {name: time.monotonic() + _interval(d) for name, d in self.deployments.items()}
        while not self._stop.is_set():
            now = time.monotonic()
            for name in [n for n, at in sorted(due.items(), key=lambda x: x[1]) if at <= now]:
                if self._stop.is_set():
                    return
                await loop.run_in_executor(self._executor, self.run_once, name)
                due[name] = time.monotonic() + _interval(self.deployments[name])
            wait = max(0.0, min(due.values()) - time.monotonic())
            try:
                await asyncio.wait_for(self._stop.wait(), wait)
            except TimeoutError:
                continue

    def run_once(self, deployment: str) -> WindowResult | None:
        """Compute, store and publish the deployment's latest window (None if it failed, or
        if another replica stored one less than half an interval ago)."""
        try:
            if self._recent(deployment):
                return None
            result = self.windows.compute(
                deployment, self.deployments[deployment], end=self.clock(), progress=self._check
            )
            result = replace(result, id=self.windows.store(result))
        except _Stopped:
            return None
        except Exception:
            self.metrics.monitor_window_failures.labels(deployment).inc()
            logger.exception(
                "monitor window of %s failed; retrying at the next interval", deployment
            )
            return None
        self.runs += 1
        self.publish(result)
        if self.on_window is not None:
            try:
                self.on_window(result)
            except Exception:
                logger.exception("handling the monitor window of %s failed", deployment)
        return result

    def _recent(self, deployment: str) -> bool:
        """Replicas share the database: each runs this job, one window per interval is kept."""
        stored = self.windows.last_stored_at(deployment)
        half = timedelta(seconds=_interval(self.deployments[deployment]) / 2)
        return stored is not None and stored > self.clock() - half

    def _check(self, done: int, total: int) -> None:
        if self._halt.is_set():
            raise _Stopped

    def publish(self, result: WindowResult) -> None:
        """Set the gauges from `result`; remove the deployment's series it no longer has."""
        version = str(result.model_version)
        base = (result.deployment, version)
        values: dict[str, dict[tuple[str, ...], float]] = {
            name: {}
            for name in (
                "feature_drift",
                "prediction_drift",
                "dataset_drift_share",
                "performance",
                "estimated_performance",
                "label_coverage",
            )
        }
        if result.drift is not None:
            for feature in result.drift.features:
                for statistic in feature.statistics:
                    if statistic.method in (feature.method, "psi"):
                        key = (*base, feature.name, statistic.method)
                        values["feature_drift"][key] = statistic.score
            if result.drift.prediction is not None:
                for statistic in result.drift.prediction.statistics:
                    if statistic.method in (result.drift.prediction.method, "psi"):
                        values["prediction_drift"][(*base, statistic.method)] = statistic.score
            values["dataset_drift_share"][base] = result.drift.share
        for kind, data in (
            ("performance", result.performance),
            ("estimated_performance", result.estimated),
        ):
            for metric in METRICS:
                value = (data or {}).get(metric)
                if isinstance(value, int | float) and not isinstance(value, bool):
                    values[kind][(*base, metric)] = float(value)
        coverage = (result.performance or {}).get("label_coverage")
        if isinstance(coverage, int | float):
            values["label_coverage"][base] = float(coverage)
        current = self._series.setdefault(result.deployment, {})
        for name, series in values.items():
            gauge: Gauge = getattr(self.metrics, name)
            for labels in current.get(name, set()) - series.keys():
                gauge.remove(*labels)
            for labels, value in series.items():
                gauge.labels(*labels).set(value)
            current[name] = set(series)


def _interval(deployment: Deployment) -> float:
    return deployment.monitor.interval_seconds if deployment.monitor is not None else 60.0
