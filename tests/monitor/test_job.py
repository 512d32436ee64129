"""The background monitor: stores windows, publishes gauges, survives failures, stops."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from bastion.monitor.job import MonitorJob, OnWindow
from bastion.monitor.metrics import ServingMetrics
from bastion.monitor.results import WindowResult
from bastion.settings import Settings
from bastion.spec import Spec
from tests.monitor.monitoring import ROWS, Logged, monitored_spec, serving


def _job(
    logged: Logged, spec: Spec | None = None, *, on_window: OnWindow | None = None
) -> tuple[MonitorJob, ServingMetrics]:
    metrics = ServingMetrics()
    clock = lambda: datetime.now(UTC)  # noqa: E731
    job = MonitorJob(logged.service, spec or logged.spec, metrics, clock, on_window=on_window)
    return job, metrics


def _value(metrics: ServingMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


def test_run_once_stores_the_latest_window_and_sets_the_gauges(logged: Logged) -> None:
    seen: list[WindowResult] = []
    job, metrics = _job(logged, on_window=seen.append)

    result = job.run_once("credit")

    assert result is not None
    assert result.rows == ROWS, "window_rows of the spec"
    assert seen == [result]
    stored = logged.service.latest("credit")
    assert stored is not None
    assert stored.id == result.id
    income = {"deployment": "credit", "model_version": "1", "feature": "income"}
    assert _value(metrics, "bastion_feature_drift_score", **income, method="ks") == pytest.approx(
        result.drift.feature("income").score if result.drift else -1
    )
    assert _value(metrics, "bastion_feature_drift_score", **income, method="psi") is not None
    share = _value(metrics, "bastion_dataset_drift_share", deployment="credit", model_version="1")
    assert share == pytest.approx(1 / 8)
    coverage = _value(metrics, "bastion_label_coverage", deployment="credit", model_version="1")
    assert coverage == 0.0
    estimated = {"deployment": "credit", "model_version": "1", "metric": "roc_auc"}
    assert _value(metrics, "bastion_estimated_performance", **estimated) is not None
    assert _value(metrics, "bastion_performance", **estimated) is None, "no labels: no value"


def test_replicas_keep_one_window_per_interval(logged: Logged) -> None:
    first, _ = _job(logged)
    second, _ = _job(logged)  # another replica over the same database

    assert first.run_once("credit") is not None
    assert second.run_once("credit") is None

    assert len(logged.service.list("credit", 10)) == 1


def test_a_new_model_version_replaces_the_old_series(logged: Logged) -> None:
    job, metrics = _job(logged)
    result = job.run_once("credit")
    assert result is not None

    job.publish(replace(result, model_version=2))

    text = metrics.render().decode()
    assert 'model_version="2"' in text
    assert 'model_version="1"' not in text


def test_a_failing_window_is_logged_counted_and_the_job_goes_on(
    logged: Logged, caplog: pytest.LogCaptureFixture
) -> None:
    # a version registered without a sample has no drift reference to compare with
    logged.service.registry.register("fragile", "tests.serving.fragile_model:FragileModel")
    broken = Spec.model_validate(
        {"deployments": {"fragile": {"model": "fragile:1", "monitor": {"min_rows": 50}}}}
    )
    calls: list[WindowResult] = []
    job, metrics = _job(logged, broken, on_window=calls.append)

    with caplog.at_level(logging.ERROR):
        assert job.run_once("fragile") is None
        assert job.run_once("fragile") is None

    assert _value(metrics, "bastion_monitor_window_failures_total", deployment="fragile") == 2
    assert "monitor window of fragile failed" in caplog.text
    assert calls == []


def test_an_on_window_failure_does_not_lose_the_window(
    logged: Logged, caplog: pytest.LogCaptureFixture
) -> None:
    def explode(result: WindowResult) -> None:
        raise RuntimeError("alert store down")

    job, _ = _job(logged, on_window=explode)

    with caplog.at_level(logging.ERROR):
        result = job.run_once("credit")

    assert result is not None
    assert logged.service.latest("credit") is not None
    assert "handling the monitor window of credit failed" in caplog.text


def test_the_loop_computes_windows_every_interval_and_stops_cleanly(logged: Logged) -> None:
    spec = monitored_spec(window_rows=ROWS, interval_seconds=1)
    job, _ = _job(logged, spec)

    async def run() -> float:
        await job.start()
        deadline = time.monotonic() + 10
        while job.runs < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        began = time.monotonic()
        await job.stop()
        return time.monotonic() - began

    stop_seconds = asyncio.run(run())

    assert job.runs >= 2
    assert len(logged.service.list("credit", 10)) == job.runs
    assert stop_seconds < 1.0


def test_a_spec_without_monitor_sections_starts_nothing(logged: Logged) -> None:
    spec = Spec.model_validate({"deployments": {"credit": {"model": "credit:1"}}})
    job, _ = _job(logged, spec)

    async def run() -> None:
        await job.start()
        await job.stop()

    asyncio.run(run())

    assert job.deployments == {}
    assert logged.service.list("credit", 10) == []


def test_the_server_runs_the_monitor_and_fires_alerts(logged: Logged, settings: Settings) -> None:
    spec = monitored_spec(
        window_rows=ROWS,
        interval_seconds=1,
        alerts=[{"name": "income_moved", "when": "features.income.drifted"}],
    )
    states: list[dict[str, Any]] = []
    with serving(spec, settings, logged.token) as client:
        deadline = time.monotonic() + 15
        while not states and time.monotonic() < deadline:
            time.sleep(0.1)
            states = client.get("/v1/deployments/credit/monitor/alerts").json()["states"]
        metrics = client.get("/metrics").text

    assert [(s["name"], s["state"]) for s in states] == [("income_moved", "firing")]
    assert 'bastion_feature_drift_score{deployment="credit",feature="income"' in metrics
    assert logged.service.latest("credit") is not None
