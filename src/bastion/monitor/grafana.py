"""A Grafana dashboard for Bastion's metrics (``bastion monitor grafana-dashboard``).

Three rows: serving (requests by status, error ratio, latency quantiles from the request
histogram, decisions by outcome, the review queue, the decision log), drift (per-feature
and prediction drift scores, the share of drifted features) and performance (label-based,
the label-free estimate, label coverage). A ``datasource`` variable picks the Prometheus
data source on import and a ``deployment`` variable (multi-select, from
``bastion_model_info``) filters every panel. With a spec, the deployment variable starts on
the spec's deployments and the drift-share panel marks the spec's ``drift_share``.
"""

from __future__ import annotations

from typing import Any

from bastion.monitor.methods import DriftConfig
from bastion.spec import Spec

SCHEMA_VERSION = 39
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
ALL = 'deployment=~"$deployment"'
FAILED = 'status!="ok"'
_WIDTH = 24


def grafana_dashboard(spec: Spec | None = None) -> dict[str, Any]:
    """The dashboard as a JSON-ready mapping (import it in Grafana, or provision it)."""
    deployments = sorted(spec.deployments) if spec is not None else []
    shares = [
        d.monitor.drift.drift_share
        for d in (spec.deployments.values() if spec is not None else ())
        if d.monitor is not None
    ]
    drift_share = min(shares) if shares else DriftConfig().drift_share
    layout = _Layout()
    panels = [
        layout.row("Serving"),
        layout.panel(
            "Requests per second by status",
            [
                _target(
                    _rate("bastion_requests_total", "deployment, status"),
                    "{{deployment}} {{status}}",
                )
            ],
            unit="reqps",
        ),
        layout.panel(
            "Error ratio",
            [
                _target(
                    _rate("bastion_requests_total", "deployment", FAILED)
                    + " / "
                    + _rate("bastion_requests_total", "deployment"),
                    "{{deployment}}",
                )
            ],
            unit="percentunit",
        ),
        layout.panel(
            "Latency quantiles",
            [
                _target(
                    f"histogram_quantile({q}, "
                    f"{_rate('bastion_request_duration_seconds_bucket', 'deployment, le')})",
                    f"{{{{deployment}}}} p{round(q * 100)}",
                )
                for q in (0.5, 0.9, 0.99)
            ],
            unit="s",
        ),
        layout.panel(
            "Decisions by outcome",
            [
                _target(
                    _rate("bastion_decisions_total", "deployment, outcome"),
                    "{{deployment}} {{outcome}}",
                )
            ],
            unit="ops",
        ),
        layout.panel(
            "Review queue",
            [
                _target(f"bastion_review_queue_depth{{{ALL}}}", "{{deployment}} unresolved"),
                _target(f"bastion_review_overdue_tasks{{{ALL}}}", "{{deployment}} overdue"),
            ],
            unit="short",
        ),
        layout.panel(
            "Oldest unresolved review task",
            [_target(f"bastion_review_oldest_task_age_seconds{{{ALL}}}", "{{deployment}}")],
            unit="s",
        ),
        layout.panel(
            "Decision log",
            [
                _target("bastion_decision_log_pending", "waiting to commit"),
                _target("rate(bastion_decision_log_spooled_total[$__rate_interval])", "spooled/s"),
            ],
            unit="short",
        ),
        layout.row("Drift"),
        layout.panel(
            "Feature drift score",
            [
                _target(
                    f"bastion_feature_drift_score{{{ALL}}}",
                    "{{deployment}} {{feature}} ({{method}})",
                )
            ],
            unit="short",
            description="A p-value for ks, chisquare and z (drift when small); a distance "
            "for wasserstein, jensenshannon and psi (drift when large).",
        ),
        layout.panel(
            "Prediction drift score",
            [_target(f"bastion_prediction_drift_score{{{ALL}}}", "{{deployment}} ({{method}})")],
            unit="short",
        ),
        layout.panel(
            "Share of features drifted",
            [_target(f"bastion_dataset_drift_share{{{ALL}}}", "{{deployment}} v{{model_version}}")],
            kind="stat",
            unit="percentunit",
            thresholds=[("green", None), ("red", drift_share)],
        ),
        layout.row("Performance"),
        layout.panel(
            "Performance (label-based)",
            [
                _target(
                    f"bastion_performance{{{ALL}}}", "{{deployment}} v{{model_version}} {{metric}}"
                )
            ],
            unit="short",
        ),
        layout.panel(
            "Estimated performance (CBPE, label-free)",
            [
                _target(
                    f"bastion_estimated_performance{{{ALL}}}",
                    "{{deployment}} v{{model_version}} {{metric}}",
                )
            ],
            unit="short",
        ),
        layout.panel(
            "Label coverage",
            [_target(f"bastion_label_coverage{{{ALL}}}", "{{deployment}} v{{model_version}}")],
            unit="percentunit",
        ),
    ]
    return {
        "uid": "bastion-overview",
        "title": "Bastion",
        "description": "Serving, drift and performance of Bastion deployments.",
        "tags": ["bastion"],
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "editable": True,
        "graphTooltip": 1,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "timezone": "utc",
        "annotations": {"list": []},
        "templating": {"list": [_datasource_variable(), _deployment_variable(deployments)]},
        "panels": panels,
    }


def _rate(metric: str, by: str, matcher: str = "") -> str:
    matchers = ", ".join(m for m in (ALL, matcher) if m)
    return f"sum by ({by}) (rate({metric}{{{matchers}}}[$__rate_interval]))"


def _target(expr: str, legend: str) -> dict[str, Any]:
    return {"datasource": DATASOURCE, "expr": expr, "legendFormat": legend, "refId": ""}


class _Layout:
    """Places panels two per row of the 24-column grid and numbers them."""

    def __init__(self) -> None:
        self.next_id = 1
        self.y = 0
        self.x = 0

    def row(self, title: str) -> dict[str, Any]:
        if self.x:
            self.x, self.y = 0, self.y + 8
        panel = {
            "id": self._id(),
            "type": "row",
            "title": title,
            "collapsed": False,
            "panels": [],
            "gridPos": {"h": 1, "w": _WIDTH, "x": 0, "y": self.y},
        }
        self.y += 1
        return panel

    def panel(
        self,
        title: str,
        targets: list[dict[str, Any]],
        *,
        unit: str,
        kind: str = "timeseries",
        description: str = "",
        thresholds: list[tuple[str, float | None]] | None = None,
    ) -> dict[str, Any]:
        width = _WIDTH // 2
        for i, target in enumerate(targets):
            target["refId"] = chr(ord("A") + i)
        steps = [
            {"color": color, "value": value} for color, value in thresholds or [("green", None)]
        ]
        panel = {
            "id": self._id(),
            "type": kind,
            "title": title,
            "description": description,
            "datasource": DATASOURCE,
            "targets": targets,
            "fieldConfig": {
                "defaults": {"unit": unit, "thresholds": {"mode": "absolute", "steps": steps}},
                "overrides": [],
            },
            "options": {
                "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True}
            },
            "gridPos": {"h": 8, "w": width, "x": self.x, "y": self.y},
        }
        self.x += width
        if self.x >= _WIDTH:
            self.x, self.y = 0, self.y + 8
        return panel

    def _id(self) -> int:
        self.next_id += 1
        return self.next_id - 1


def _datasource_variable() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "refresh": 1,
        "options": [],
    }


def _deployment_variable(deployments: list[str]) -> dict[str, Any]:
    query = "label_values(bastion_model_info, deployment)"
    if deployments:
        current = {"selected": True, "text": deployments, "value": deployments}
    else:
        current = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return {
        "name": "deployment",
        "label": "Deployment",
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": "deployments"},
        "refresh": 2,
        "multi": True,
        "includeAll": True,
        "current": current,
        "options": [],
        "sort": 1,
        "hide": 0,
    }
