"""The window summary alert rules see: plain JSON, never NaN, and usable from CEL."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import cel
import numpy as np
import pandas as pd

from bastion.monitor.drift import compare
from bastion.monitor.profile import Schema, profile_frame
from bastion.monitor.results import WindowResult
from bastion.monitor.summary import window_summary

SCHEMA = Schema({"income": "numeric", "channel": "categorical"}, prediction="score")
START, END = datetime(2026, 5, 1, 12, tzinfo=UTC), datetime(2026, 5, 1, 13, tzinfo=UTC)


def _frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.normal(50_000 + shift, 10_000, n),
            "channel": rng.choice(["web", "branch"], n),
            "score": rng.uniform(0, 1, n),
        }
    )


def _window(shift: float, *, judged: bool = True) -> WindowResult:
    reference = profile_frame(_frame(2000, 1), SCHEMA)
    current = profile_frame(_frame(1000, 2, shift), SCHEMA, reference)
    return WindowResult(
        deployment="credit",
        model_name="credit",
        model_version=3,
        started_at=START,
        ended_at=END,
        rows=current.rows,
        profile=current,
        drift=compare(reference, current) if judged else None,
        performance={"roc_auc": 0.71, "precision": None, "label_coverage": 0.2, "labelled": 200},
        estimated={"estimate": True, "roc_auc": 0.78, "calibrated": True},
    )


def _holds(expression: str, summary: dict[str, object]) -> object:
    return cel.compile(expression).execute(cel.Context(variables=summary))


def test_summary_of_a_drifted_window_drives_the_documented_rules() -> None:
    summary = window_summary(_window(shift=8_000), {"roc_auc": 0.81})

    income = summary["features"]["income"]
    assert income["drifted"] is True
    assert income["method"] == "wasserstein"
    assert income["psi"] > 0.2
    assert income["chisquare"] is None, "a statistic the feature did not get is null"
    assert summary["dataset"] == {
        "judged": True,
        "drift_share": 0.5,
        "drifted": True,
        "drifted_features": 1,
        "total_features": 2,
    }
    assert summary["window"]["model_version"] == 3
    assert _holds("features.exists(f, features[f].psi > 0.2)", summary) is True
    assert _holds("reference.roc_auc - estimated.roc_auc > 0.05", summary) is False
    assert _holds("performance.label_coverage < 0.5 && dataset.drifted", summary) is True


def test_summary_of_a_stable_window_holds_no_drift_rule() -> None:
    summary = window_summary(_window(shift=0.0), {})

    assert not any(f["drifted"] for f in summary["features"].values())
    assert summary["prediction"]["drifted"] is False
    assert _holds("features.exists(f, features[f].drifted)", summary) is False


def test_summary_has_no_nan_or_infinity_anywhere() -> None:
    window = replace(
        _window(shift=8_000),
        performance={"roc_auc": float("nan"), "cost": float("inf"), "label_coverage": 0.0},
    )

    summary = window_summary(window, {"roc_auc": float("nan"), "mae": 3})

    json.dumps(summary, allow_nan=False)
    assert summary["performance"]["roc_auc"] is None
    assert summary["performance"]["cost"] is None
    assert summary["reference"] == {"roc_auc": None, "mae": 3}


def test_summary_of_an_unjudged_window_has_no_features() -> None:
    summary = window_summary(replace(_window(0.0, judged=False), estimated=None), {})

    assert summary["features"] == {}
    assert summary["prediction"] is None
    assert summary["estimated"] is None
    assert summary["dataset"]["judged"] is False
    assert _holds("features.exists(f, features[f].psi > 0.2)", summary) is False
