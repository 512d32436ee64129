"""Alert rules over window summaries: state, history, errors and NaN, on both databases."""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bastion.cli import app
from bastion.monitor.alerts import (
    AlertEvaluator,
    alert_history,
    alert_states,
    clean_summary,
    referenced_values,
)
from bastion.monitor.drift import compare
from bastion.monitor.methods import DriftConfig
from bastion.monitor.notify import Notifier
from bastion.monitor.profile import Schema, profile_frame
from bastion.monitor.results import WindowResult
from bastion.monitor.summary import window_summary
from bastion.spec import Spec
from bastion.store import Database

START = datetime(2026, 3, 1, 12, tzinfo=UTC)
HOOK = "http://127.0.0.1:9/hook"


def monitor_spec(alerts: list[dict[str, Any]], *, webhooks: int = 0, min_rows: int = 10) -> Spec:
    return Spec.model_validate(
        {
            "deployments": {
                "credit": {
                    "model": "credit:1",
                    "monitor": {
                        "min_rows": min_rows,
                        "alerts": alerts,
                        "webhooks": [{"url": HOOK}] * webhooks,
                    },
                },
                "plain": {"model": "credit:1"},
            }
        }
    )


PSI_RULE = {
    "name": "feature_psi",
    "when": "features.exists(f, features[f].psi > 0.2)",
    "for_windows": 2,
    "severity": "critical",
    "summary": "a feature moved",
}
AUC_RULE = {
    "name": "estimated_auc_drop",
    "when": "has(estimated.roc_auc) && reference.roc_auc - estimated.roc_auc > 0.05",
}


def summary(psi: float = 0.05, estimated_auc: float | None = None) -> dict[str, Any]:
    estimated = {} if estimated_auc is None else {"roc_auc": estimated_auc, "estimate": True}
    return {
        "features": {"income": {"psi": psi, "p_value": 0.5}, "age": {"psi": 0.01, "p_value": 0.9}},
        "prediction": {"psi": 0.0},
        "dataset": {"drift_share": 0.0, "drifted": False},
        "performance": {},
        "estimated": estimated,
        "reference": {"roc_auc": 0.80},
        "window": {"rows": 500},
    }


class Windows:
    """Feeds summaries to an evaluator as consecutive hourly windows."""

    def __init__(self, evaluator: AlertEvaluator) -> None:
        self.evaluator = evaluator
        self.count = 0

    def judge(self, values: Mapping[str, Any]) -> list[tuple[str, str, str]]:
        self.count += 1
        ended = START + timedelta(hours=self.count)
        window = {
            "started_at": (ended - timedelta(hours=1)).isoformat(),
            "ended_at": ended.isoformat(),
        }
        transitions = self.evaluator.evaluate_summary(
            "credit", values, window=window, ended_at=ended
        )
        return [(t.rule, t.from_state, t.to_state) for t in transitions]


def test_alert_fires_after_for_windows_and_resolves(database: Database) -> None:
    windows = Windows(AlertEvaluator(database, monitor_spec([PSI_RULE])))

    assert windows.judge(summary(psi=0.3)) == [("feature_psi", "ok", "pending")]
    assert windows.judge(summary(psi=0.4)) == [("feature_psi", "pending", "firing")]
    assert windows.judge(summary(psi=0.5)) == []  # still firing: no new event
    assert windows.judge(summary(psi=0.1)) == [("feature_psi", "firing", "ok")]

    history = alert_history(database, "credit")
    assert [(e.from_state, e.to_state) for e in reversed(history)] == [
        ("ok", "pending"),
        ("pending", "firing"),
        ("firing", "ok"),
    ]
    firing = history[1]
    assert firing.details["severity"] == "critical"
    assert firing.details["value"] == {"features[*].psi": {"income": 0.4, "age": 0.01}}
    assert firing.notified_at is None
    assert firing.attempts == 0
    (state,) = alert_states(database, "credit")
    assert (state.name, state.state, state.consecutive) == ("feature_psi", "ok", 0)


def test_alert_pending_falls_back_to_ok_when_the_condition_stops(database: Database) -> None:
    windows = Windows(AlertEvaluator(database, monitor_spec([PSI_RULE])))

    windows.judge(summary(psi=0.3))
    assert windows.judge(summary(psi=0.1)) == [("feature_psi", "pending", "ok")]
    # the count starts again: one more drifted window is pending, not firing
    assert windows.judge(summary(psi=0.3)) == [("feature_psi", "ok", "pending")]


def test_alert_with_one_window_fires_at_once(database: Database) -> None:
    windows = Windows(AlertEvaluator(database, monitor_spec([AUC_RULE])))

    assert windows.judge(summary(estimated_auc=0.78)) == []
    assert windows.judge(summary(estimated_auc=0.70)) == [("estimated_auc_drop", "ok", "firing")]
    (event,) = alert_history(database, "credit")
    assert event.details["value"] == {"estimated.roc_auc": 0.70, "reference.roc_auc": 0.80}


def test_alert_state_survives_a_new_evaluator(database: Database) -> None:
    """State lives in the database: a restarted server continues the count."""
    spec = monitor_spec([PSI_RULE])
    first = Windows(AlertEvaluator(database, spec))
    first.judge(summary(psi=0.3))
    second = Windows(AlertEvaluator(database, spec))
    second.count = first.count
    assert second.judge(summary(psi=0.3)) == [("feature_psi", "pending", "firing")]


def test_alert_window_judged_once(database: Database) -> None:
    """The same window evaluated again (a restart, a second replica) changes nothing."""
    evaluator = AlertEvaluator(database, monitor_spec([PSI_RULE]))
    ended = START + timedelta(hours=1)
    for _ in range(3):
        evaluator.evaluate_summary("credit", summary(psi=0.3), window={}, ended_at=ended)
    (state,) = alert_states(database, "credit")
    assert (state.state, state.consecutive) == ("pending", 1)
    assert len(alert_history(database, "credit")) == 1


def test_alert_rule_error_is_counted_and_keeps_state(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    broken = {"name": "precision_floor", "when": "performance.precision < 0.5"}
    not_bool = {"name": "not_bool", "when": "dataset.drift_share"}
    evaluator = AlertEvaluator(database, monitor_spec([broken, not_bool, PSI_RULE]))
    windows = Windows(evaluator)

    with caplog.at_level(logging.WARNING, logger="bastion.monitor.alerts"):
        result = windows.judge(summary(psi=0.3))

    assert result == [("feature_psi", "ok", "pending")]  # the other rules still ran
    assert evaluator.errors[("credit", "precision_floor")] == 1
    assert evaluator.errors[("credit", "not_bool")] == 1
    assert "precision_floor" in caplog.text
    assert "no such key" in caplog.text
    states = {s.name: s for s in alert_states(database, "credit")}
    assert states["precision_floor"].state == "ok"
    assert "no such key" in states["precision_floor"].details["error"]
    assert "bool" in states["not_bool"].details["error"]


def test_alert_summary_nan_becomes_null(database: Database) -> None:
    rule = {"name": "no_estimate", "when": "estimated.roc_auc == null"}
    windows = Windows(AlertEvaluator(database, monitor_spec([rule])))
    assert windows.judge(summary(estimated_auc=math.nan)) == [("no_estimate", "ok", "firing")]


def test_clean_summary_has_every_variable_and_no_nan() -> None:
    cleaned = clean_summary({"features": {"x": {"psi": float("inf"), "ks": (1.0, math.nan)}}})
    assert cleaned["features"] == {"x": {"psi": None, "ks": [1.0, None]}}
    assert {k: v for k, v in cleaned.items() if k != "features"} == {
        "prediction": {},
        "dataset": {},
        "performance": {},
        "estimated": {},
        "reference": {},
        "window": {},
    }


def test_referenced_values_lowest_p_values_first() -> None:
    values = referenced_values(
        "features.exists(f, features[f].p_value < 0.01) || dataset.drift_share > 0.5",
        clean_summary(summary()),
    )
    assert values == {
        "dataset.drift_share": 0.0,
        "features[*].p_value": {"income": 0.5, "age": 0.9},
    }


@dataclass(frozen=True)
class FakeWindow:
    deployment: str
    rows: int
    model_name: str = "credit"
    model_version: int = 1
    started_at: datetime = START
    ended_at: datetime = START + timedelta(hours=1)


def test_evaluate_window_skips_small_windows_and_other_deployments(database: Database) -> None:
    seen: list[Any] = []

    def summarize(result: Any) -> dict[str, Any]:
        seen.append(result)
        return summary(psi=0.3)

    evaluator = AlertEvaluator(database, monitor_spec([AUC_RULE, PSI_RULE]), summarize=summarize)

    assert evaluator.evaluate(FakeWindow("credit", rows=5)) == []  # below min_rows
    assert evaluator.evaluate(FakeWindow("plain", rows=500)) == []  # no monitor section
    assert seen == []
    (transition,) = evaluator.evaluate(FakeWindow("credit", rows=500))
    assert (transition.rule, transition.to_state) == ("feature_psi", "pending")
    assert transition.window["rows"] == 500
    assert transition.window["model_version"] == 1


def test_evaluator_hands_firing_and_resolved_to_the_notifier(database: Database) -> None:
    spec = monitor_spec([PSI_RULE], webhooks=1)
    notifier = Notifier(spec, httpx.AsyncClient(), database)  # not started: deliveries queue
    windows = Windows(AlertEvaluator(database, spec, notifier))

    windows.judge(summary(psi=0.3))  # pending: history only
    assert notifier.pending == 0
    windows.judge(summary(psi=0.3))  # firing
    windows.judge(summary(psi=0.0))  # resolved
    assert notifier.pending == 2


def test_cli_alerts_shows_state_and_history(
    database: Database, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / ".bastion"))
    monkeypatch.setenv("BASTION_DATABASE_URL", database_url)
    windows = Windows(AlertEvaluator(database, monitor_spec([PSI_RULE, AUC_RULE])))
    windows.judge(summary(psi=0.3, estimated_auc=0.7))
    windows.judge(summary(psi=0.3, estimated_auc=0.79))
    runner = CliRunner()

    result = runner.invoke(app, ["monitor", "alerts", "credit", "--history", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert {a["name"]: a["state"] for a in body["alerts"]} == {
        "estimated_auc_drop": "ok",
        "feature_psi": "firing",
    }
    assert [(e["name"], e["to_state"]) for e in body["history"]] == [
        ("estimated_auc_drop", "ok"),
        ("feature_psi", "firing"),
        ("estimated_auc_drop", "firing"),
        ("feature_psi", "pending"),
    ]

    table = runner.invoke(app, ["monitor", "alerts", "credit", "--history"])
    assert table.exit_code == 0, table.output
    assert "firing" in table.output
    assert "pending → firing" in table.output
    empty = runner.invoke(app, ["monitor", "alerts", "nothing"])
    assert "no alerts evaluated yet for nothing" in empty.output


DOCS = Path(__file__).parents[2] / "docs" / "alerts.md"


def documented_patterns() -> list[str]:
    """The CEL column of the "Useful CEL patterns" table in docs/alerts.md."""
    text = DOCS.read_text(encoding="utf-8")
    table = text.split("Useful CEL patterns", 1)[1].split("CEL does not mix", 1)[0]
    rows = [line.split("|")[2].strip() for line in table.splitlines() if line.startswith("| ")]
    return [row.strip("`") for row in rows[1:]]  # without the header


@pytest.mark.parametrize(
    "values",
    [
        {"performance": None, "estimated": None, "prediction": None},  # no labels, no estimate
        {
            "features": {"income": {"psi": 0.3, "drifted": True}},
            "prediction": {"psi": 0.3},
            "dataset": {"drifted": True, "drifted_features": 3},
            "performance": {"precision": None, "label_coverage": None},
            "estimated": {"roc_auc": None},
            "reference": {"roc_auc": 0.8},
        },
        {
            "performance": {"precision": 0.5, "label_coverage": 0.001},
            "estimated": {"roc_auc": 0.7},
            "reference": {"roc_auc": 0.8},
            "dataset": {"drifted": False, "drifted_features": 0},
        },
    ],
    ids=["nothing", "unknown", "known"],
)
def test_documented_patterns_never_error(database: Database, values: dict[str, Any]) -> None:
    patterns = documented_patterns()
    assert len(patterns) >= 6
    rules = [{"name": f"doc_{i}", "when": when} for i, when in enumerate(patterns)]
    evaluator = AlertEvaluator(database, monitor_spec(rules))
    base = {"dataset": {"drifted": False, "drifted_features": 0}}
    evaluator.evaluate_summary("credit", base | values, window={}, ended_at=START)
    assert not evaluator.errors, dict(evaluator.errors)


def test_alerts_over_a_real_window_summary(database: Database) -> None:
    """End to end with the drift library and `window_summary`: the shifted feature fires."""
    rng = np.random.default_rng(5)
    schema = Schema({"income": "numeric", "channel": "categorical"}, prediction="score")

    def frame(shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "income": rng.normal(50 + shift, 10, 2000),
                "channel": rng.choice(["web", "branch"], 2000),
                "score": rng.uniform(0, 1, 2000),
            }
        )

    reference = profile_frame(frame(0), schema)
    current = profile_frame(frame(15), schema, reference)
    result = WindowResult(
        deployment="credit",
        model_name="credit",
        model_version=1,
        started_at=START,
        ended_at=START + timedelta(hours=1),
        rows=2000,
        profile=current,
        drift=compare(reference, current, DriftConfig()),
        performance=None,
        estimated=None,
    )
    rules = [
        {"name": "income", "when": "features.income.drifted"},
        {"name": "channel", "when": "features.channel.drifted"},
        {"name": "auc", "when": "has(estimated.roc_auc) && estimated.roc_auc < 0.7"},
    ]
    evaluator = AlertEvaluator(
        database,
        monitor_spec(rules),
        summarize=lambda r: window_summary(r, {"roc_auc": 0.8}),
    )
    transitions = evaluator.evaluate(result)
    assert [(t.rule, t.to_state) for t in transitions] == [("income", "firing")]
    assert not evaluator.errors
