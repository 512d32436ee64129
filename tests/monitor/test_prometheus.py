"""Prometheus rules: promtool accepts them, they fire on the series they should, and they
only name metrics Bastion exposes."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from bastion.cli import app
from bastion.monitor.metrics import ServingMetrics
from bastion.monitor.prometheus import prometheus_rules, render_rules
from bastion.spec import Spec

IN_CI = os.environ.get("CI", "").lower() == "true"
METRIC = re.compile(r"\b(bastion_[a-z0-9_]+)")

SPEC = Spec.model_validate(
    {
        "deployments": {
            "credit": {
                "model": "credit:1",
                "monitor": {
                    "interval_seconds": 60,
                    "drift": {"per_feature_threshold": {"notes": 0.3}, "drift_share": 0.4},
                },
            },
            "plain": {"model": "credit:1"},
        }
    }
)


def exposed_metric_names() -> set[str]:
    """Every sample name a server's /metrics can carry (counters with _total, histograms
    with _bucket/_count/_sum, …), whether or not a series exists yet."""
    names: set[str] = set()
    for family in ServingMetrics().registry.collect():
        suffixes = {
            "counter": ("_total", "_created"),
            "histogram": ("_bucket", "_count", "_sum", "_created"),
            "gauge": ("",),
        }[family.type]
        names.update(family.name + suffix for suffix in suffixes)
    return names


def expressions(rules: dict[str, Any]) -> list[str]:
    return [rule["expr"] for group in rules["groups"] for rule in group["rules"]]


@pytest.fixture(scope="module")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        message = "promtool is not installed (Debian: apt-get install prometheus)"
        if IN_CI:
            pytest.fail(f"{message}; CI requires it", pytrace=False)
        pytest.skip(message)
    return path


def run(promtool: str, *args: str, cwd: Path) -> None:
    result = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("spec", [None, SPEC], ids=["defaults", "spec"])
def test_prometheus_rules_pass_promtool_check(
    promtool: str, tmp_path: Path, spec: Spec | None
) -> None:
    (tmp_path / "rules.yml").write_text(render_rules(spec))
    run(promtool, "check", "rules", "rules.yml", cwd=tmp_path)


def test_prometheus_rules_name_only_exposed_metrics() -> None:
    exposed = exposed_metric_names()
    for spec in (None, SPEC):
        for expr in expressions(prometheus_rules(spec)):
            used = set(METRIC.findall(expr))
            assert used, expr
            assert used <= exposed, f"{expr}: {sorted(used - exposed)} not exposed"


def test_prometheus_rules_one_group_per_monitored_deployment() -> None:
    names = [group["name"] for group in prometheus_rules(SPEC)["groups"]]
    assert names == ["bastion-serving", "bastion-monitor-credit"]
    rules = {r["alert"]: r for r in prometheus_rules(SPEC)["groups"][1]["rules"]}
    assert rules["BastionFeatureDrift"]["for"] == "120s"  # 2 windows x 60 s
    assert 'deployment="credit"' in rules["BastionFeatureDrift"]["expr"]
    assert rules["BastionDatasetDrift"]["expr"].endswith(">= 0.4")


FEATURE_DRIFT = (
    "A feature's drift score in the latest window crossed its method's threshold: a distance "
    "(wasserstein, jensenshannon, psi) at or above it, a p-value (ks, chisquare, z, mmd) below it."
)


def drift_series(feature: str, method: str, value: float) -> dict[str, str]:
    labels = f'deployment="credit", model_version="3", feature="{feature}", method="{method}"'
    return {"series": f"bastion_feature_drift_score{{{labels}}}", "values": f"{value}x10"}


def test_prometheus_rules_fire_on_drift_and_respect_thresholds(
    promtool: str, tmp_path: Path
) -> None:
    """promtool's rule unit tests: which series fire, with the spec's thresholds."""
    (tmp_path / "rules.yml").write_text(render_rules(SPEC))
    firing = {"severity": "warning", "deployment": "credit", "model_version": "3"}
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    drift_series("income", "wasserstein", 0.25),  # ≥ 0.1: drift
                    drift_series("age", "wasserstein", 0.02),  # stable
                    drift_series("channel", "jensenshannon", 0.15),  # ≥ 0.1: drift
                    drift_series("tenure", "ks", 0.01),  # p ≤ 0.05: drift
                    drift_series("region", "chisquare", 0.5),  # p large: stable
                    drift_series("notes.length", "jensenshannon", 0.2),  # own threshold 0.3
                    drift_series("notes.oov_rate", "psi", 0.35),  # ≥ 0.3: drift
                    {
                        "series": 'bastion_dataset_drift_share{deployment="credit", model_version="3"}',
                        "values": "0.5x10",
                    },
                ],
                "alert_rule_test": [
                    {"eval_time": "1m", "alertname": "BastionFeatureDrift", "exp_alerts": []},
                    {
                        "eval_time": "5m",
                        "alertname": "BastionFeatureDrift",
                        "exp_alerts": [
                            {
                                "exp_labels": {**firing, "feature": f, "method": m},
                                "exp_annotations": {
                                    "summary": f"credit v3: {f} drifted ({m} {v})",
                                    "description": FEATURE_DRIFT,
                                },
                            }
                            for f, m, v in [
                                ("income", "wasserstein", 0.25),
                                ("channel", "jensenshannon", 0.15),
                                ("tenure", "ks", 0.01),
                                ("notes.oov_rate", "psi", 0.35),
                            ]
                        ],
                    },
                    {
                        "eval_time": "5m",
                        "alertname": "BastionDatasetDrift",
                        "exp_alerts": [
                            {
                                "exp_labels": firing,
                                "exp_annotations": {
                                    "summary": "credit: 50% of features drifted",
                                    "description": "At least 40% of the features drifted in "
                                    "the latest window.",
                                },
                            }
                        ],
                    },
                ],
            }
        ],
    }
    yaml = YAML(typ="safe", pure=True)
    with (tmp_path / "tests.yml").open("w") as out:
        yaml.dump(tests, out)
    run(promtool, "test", "rules", "tests.yml", cwd=tmp_path)


def description(alert: str) -> str:
    rules = prometheus_rules()["groups"][0]["rules"]
    text: str = next(r for r in rules if r["alert"] == alert)["annotations"]["description"]
    return text


def test_prometheus_rules_fire_on_serving_errors(promtool: str, tmp_path: Path) -> None:
    (tmp_path / "rules.yml").write_text(render_rules())
    ok = 'bastion_requests_total{deployment="credit", model_version="1", api="v1", status="%s"}'
    tests = {
        "rule_files": ["rules.yml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [
                    {"series": ok % "ok", "values": "0+90x20"},
                    {"series": ok % "timeout", "values": "0+10x20"},  # 10 % fail
                    {"series": "bastion_decision_log_spooled_total", "values": "0 0 0 5 5 5"},
                ],
                "alert_rule_test": [
                    {
                        "eval_time": "15m",
                        "alertname": "BastionHighErrorRatio",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical", "deployment": "credit"},
                                "exp_annotations": {
                                    "summary": "credit: 10% of scoring requests fail",
                                    "description": description("BastionHighErrorRatio"),
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "4m",
                        "alertname": "BastionDecisionLogSpooling",
                        "exp_alerts": [
                            {
                                "exp_labels": {"severity": "critical"},
                                "exp_annotations": {
                                    "summary": "Decision records are being spooled to local disk",
                                    "description": description("BastionDecisionLogSpooling"),
                                },
                            }
                        ],
                    },
                    {
                        "eval_time": "15m",
                        "alertname": "BastionDecisionLogSpooling",
                        "exp_alerts": [],
                    },
                ],
            }
        ],
    }
    yaml = YAML(typ="safe", pure=True)
    with (tmp_path / "tests.yml").open("w") as out:
        yaml.dump(tests, out)
    run(promtool, "test", "rules", "tests.yml", cwd=tmp_path)


def test_cli_prometheus_rules_writes_the_file(tmp_path: Path) -> None:
    spec_path = tmp_path / "bastion.yaml"
    spec_path.write_text(
        "deployments:\n  credit:\n    model: credit:1\n    monitor: {interval_seconds: 30}\n"
    )
    out = tmp_path / "rules.yml"
    result = CliRunner().invoke(
        app,
        [
            "monitor",
            "prometheus-rules",
            "--spec",
            str(spec_path),
            "-o",
            str(out),
            "--for-windows",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    rules = YAML(typ="safe", pure=True).load(out.read_text())
    monitor = rules["groups"][1]
    assert monitor["name"] == "bastion-monitor-credit"
    assert {r["for"] for r in monitor["rules"] if "Drift" in r["alert"]} == {"90s"}
