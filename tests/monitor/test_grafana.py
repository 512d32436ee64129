"""The Grafana dashboard: importable JSON whose panels query metrics Bastion exposes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from bastion.cli import app
from bastion.monitor.grafana import grafana_dashboard
from tests.monitor.test_prometheus import METRIC, SPEC, exposed_metric_names


def panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def test_grafana_dashboard_queries_only_exposed_metrics() -> None:
    exposed = exposed_metric_names()
    used: set[str] = set()
    for panel in panels(grafana_dashboard()):
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = set(METRIC.findall(target["expr"]))
            assert names, target["expr"]
            assert names <= exposed, f"{panel['title']}: {sorted(names - exposed)} not exposed"
            used |= names
    # the drift and performance gauges and the serving metrics each have a panel
    for metric in (
        "bastion_feature_drift_score",
        "bastion_prediction_drift_score",
        "bastion_dataset_drift_share",
        "bastion_performance",
        "bastion_estimated_performance",
        "bastion_label_coverage",
        "bastion_requests_total",
        "bastion_request_duration_seconds_bucket",
        "bastion_decisions_total",
        "bastion_review_queue_depth",
        "bastion_review_overdue_tasks",
    ):
        assert metric in used, metric


def test_grafana_dashboard_variables_and_layout() -> None:
    dashboard = grafana_dashboard()
    assert dashboard["schemaVersion"] >= 36
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["deployment"]["multi"] is True
    assert "bastion_model_info" in variables["deployment"]["query"]["query"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in panels(dashboard):
        assert panel["datasource"]["uid"] == "${datasource}"
        assert all('deployment=~"$deployment"' in t["expr"] for t in panel["targets"]) or (
            panel["title"] == "Decision log"  # the decision log is per process, not deployment
        )
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
    positions = [(p["gridPos"]["x"], p["gridPos"]["y"]) for p in dashboard["panels"]]
    assert len(positions) == len(set(positions))  # no two panels on one spot
    latency = next(p for p in panels(dashboard) if p["title"] == "Latency quantiles")
    assert [t["legendFormat"] for t in latency["targets"]] == [
        "{{deployment}} p50",
        "{{deployment}} p90",
        "{{deployment}} p99",
    ]


def test_grafana_dashboard_follows_the_spec() -> None:
    dashboard = grafana_dashboard(SPEC)
    deployment = next(v for v in dashboard["templating"]["list"] if v["name"] == "deployment")
    assert deployment["current"]["value"] == ["credit", "plain"]
    share = next(p for p in panels(dashboard) if p["title"] == "Share of features drifted")
    steps = share["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1] == {"color": "red", "value": 0.4}


def test_cli_grafana_dashboard_writes_json(tmp_path: Path) -> None:
    out = tmp_path / "dashboard.json"
    result = CliRunner().invoke(app, ["monitor", "grafana-dashboard", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == grafana_dashboard()
