"""`bastion explain importance` over explanations stored with decisions, on both databases."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from bastion.cli import app, main
from bastion.explain.explanation import make_explanation
from bastion.store import Database
from bastion.store.tables import DecisionRow

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / ".bastion"))
    monkeypatch.setenv("BASTION_DATABASE_URL", database_url)
    return CliRunner()


def stored(contributions: dict[str, float], reasons: list[str]) -> dict[str, Any]:
    """What the serving path stores: Explanation.to_dict() plus reasons."""
    explanation = make_explanation("tree_shap", -2.0, contributions, "log_odds", -1.0, target=1)
    return explanation.to_dict() | {
        "reasons": [{"field": f, "code": f.upper(), "text": f, "contribution": 1} for f in reasons]
    }


def decide(database: Database, explanations: list[dict[str, Any] | None], name: str) -> None:
    with database.transaction() as session:
        for minute, explanation in enumerate(explanations):
            session.add(
                DecisionRow(
                    id=str(uuid.uuid4()),
                    created_at=T0 + timedelta(minutes=minute),
                    deployment=name,
                    model_name="credit",
                    model_version=2,
                    subject_key=None,
                    inputs={},
                    outputs={},
                    outcome="decline",
                    latency_ms=1.0,
                    guard=None,
                    policy=None,
                    explanation=explanation,
                )
            )


@pytest.fixture
def explained(database: Database) -> Database:
    decide(
        database,
        [
            stored({"debt_ratio": 0.8, "income": -0.4, "age": 0.0}, ["debt_ratio"]),
            stored({"debt_ratio": 0.4, "income": 0.2, "age": 0.1}, ["debt_ratio", "income"]),
            stored({"debt_ratio": -0.3, "income": -0.6, "age": 0.1}, []),
            None,  # a decision that was not explained
        ],
        "credit",
    )
    decide(database, [stored({"other": 5.0}, ["other"])], "fraud")
    return database


def test_importance_as_json_aggregates_per_field(runner: CliRunner, explained: Database) -> None:
    result = runner.invoke(app, ["explain", "importance", "credit", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    fields = {f["field"]: f for f in report["fields"]}
    assert report["explained"] == 3
    assert report["with_reasons"] == 2
    assert [f["field"] for f in report["fields"]] == ["debt_ratio", "income", "age"]
    assert fields["debt_ratio"]["mean_abs"] == pytest.approx(0.5)
    assert fields["debt_ratio"]["mean"] == pytest.approx(0.3)
    assert fields["debt_ratio"]["top_reason_share"] == pytest.approx(1.0)
    assert fields["income"]["top_reason_share"] == pytest.approx(0.5)
    assert report["methods"] == {"tree_shap": 3}
    assert report["versions"] == {"credit:2": 3}


def test_limit_takes_the_newest_decisions(runner: CliRunner, explained: Database) -> None:
    result = runner.invoke(app, ["explain", "importance", "credit", "--limit", "1", "--json"])
    report = json.loads(result.stdout)
    assert report["explained"] == 1
    # the newest explained decision is the third one above
    assert {f["field"]: f["mean"] for f in report["fields"]}["income"] == pytest.approx(-0.6)


def test_importance_table(runner: CliRunner, explained: Database) -> None:
    result = runner.invoke(app, ["explain", "importance", "credit"], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "3 explained decisions" in result.stdout
    assert "debt_ratio" in result.stdout
    assert "100.0%" in result.stdout


def test_no_stored_explanations_says_why(runner: CliRunner, database: Database) -> None:
    result = runner.invoke(app, ["explain", "importance", "credit"])
    assert result.exit_code == 1
    assert "no stored explanations for deployment 'credit'" in result.stderr


def test_a_deployment_the_spec_does_not_declare_is_an_error(
    runner: CliRunner, database: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    spec = tmp_path / "bastion.yaml"
    spec.write_text("deployments:\n  credit:\n    model: credit:1\n")
    with pytest.raises(SystemExit) as exit_info:
        main(["explain", "importance", "credt", "--spec", str(spec)])
    assert exit_info.value.code == 2
    assert "declares no deployment 'credt'" in capsys.readouterr().err
