"""The `bastion` command line, run in-process as a user would type it."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from bastion.cli import app, main
from bastion.demo.data import FEATURES, generate_applications
from bastion.demo.train import train_model


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A saved demo model and a CSV sample of its training data."""
    folder = tmp_path_factory.mktemp("cli")
    frame = generate_applications(2000, seed=3)
    trained = train_model(frame, seed=3)
    sample = folder / "sample.csv"
    trained.train_frame[FEATURES].to_csv(sample, index=False)
    return trained.save(folder / "credit.txt"), sample


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / ".bastion"))
    monkeypatch.setenv("BASTION_DATABASE_URL", database_url)
    return CliRunner()


def run(runner: CliRunner, *args: str) -> str:
    result = runner.invoke(app, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_models_register_list_stage_and_card(
    runner: CliRunner, artifacts: tuple[Path, Path]
) -> None:
    model, sample = artifacts

    registered = run(
        runner,
        "models",
        "register",
        "credit",
        str(model),
        "--sample",
        str(sample),
        "--metric",
        "roc_auc=0.8",
        "--tag",
        "team=risk",
    )
    run(runner, "models", "stage", "credit:1", "production")
    listing = run(runner, "models", "list")
    shown = json.loads(run(runner, "models", "show", "credit@production"))
    card = run(runner, "models", "card", "credit:1")

    assert "registered credit:1 (lightgbm, classification" in registered
    assert "credit" in listing
    assert shown["version"] == 1
    assert shown["stage"] == "production"
    assert shown["metrics"] == {"roc_auc": 0.8}
    assert {c["name"] for c in shown["inputs"]} == set(FEATURES)
    assert "credit:1" in card
    assert "income" in card


def test_spec_check_reports_field_and_line(runner: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "bastion.yaml"
    spec.write_text(
        "deployments:\n  credit:\n    model: credit@production\n"
        "    batching:\n      max_wait_ms: -5\n"
    )

    with pytest.raises(SystemExit) as exit_info:
        main(["spec", "check", str(spec)])

    assert exit_info.value.code == 2


def test_spec_check_accepts_a_valid_spec(runner: CliRunner, tmp_path: Path) -> None:
    spec = tmp_path / "bastion.yaml"
    spec.write_text("deployments:\n  credit:\n    model: credit:1\n")

    assert "valid (1 deployment(s): credit)" in run(runner, "spec", "check", str(spec))


def test_spec_schema_is_json_schema(runner: CliRunner) -> None:
    schema = json.loads(run(runner, "spec", "schema"))

    assert "deployments" in schema["properties"]


def test_cli_errors_are_one_clear_line(
    runner: CliRunner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    garbage = tmp_path / "model.txt"
    garbage.write_bytes(b"tree\nversion=v4\nthis is not a model")

    with pytest.raises(SystemExit) as exit_info:
        main(["models", "register", "credit", str(garbage)])

    assert exit_info.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_every_command_has_help(runner: CliRunner) -> None:
    commands = [
        [],
        ["models"],
        ["models", "register"],
        ["models", "list"],
        ["models", "show"],
        ["models", "stage"],
        ["models", "history"],
        ["models", "card"],
        ["spec"],
        ["spec", "check"],
        ["spec", "schema"],
        ["db"],
        ["db", "upgrade"],
        ["serve"],
        ["demo"],
        ["keys"],
        ["keys", "create"],
        ["keys", "list"],
        ["keys", "revoke"],
        ["audit"],
        ["audit", "verify"],
        ["audit", "list"],
        ["privacy"],
        ["privacy", "export"],
        ["privacy", "erase"],
    ]
    for command in commands:
        output = run(runner, *command, "--help")
        assert "Usage" in output


def test_models_register_reads_a_parquet_sample(
    runner: CliRunner, artifacts: tuple[Path, Path], tmp_path: Path
) -> None:
    model, sample = artifacts
    parquet = tmp_path / "sample.parquet"
    pd.read_csv(sample).to_parquet(parquet)

    output = run(runner, "models", "register", "credit", str(model), "--sample", str(parquet))

    assert "registered credit:1" in output


def test_models_register_keeps_the_label_column_out_of_the_signature(
    runner: CliRunner, artifacts: tuple[Path, Path], tmp_path: Path
) -> None:
    model, sample = artifacts
    labelled = tmp_path / "labelled.csv"
    frame = pd.read_csv(sample)
    frame["default"] = (frame["debt_ratio"] > frame["debt_ratio"].median()).astype(int)
    frame.to_csv(labelled, index=False)

    run(runner, "models", "register", "credit", str(model), "--sample", str(labelled),
        "--label-column", "default")  # fmt: skip
    shown = json.loads(run(runner, "models", "show", "credit:1"))

    assert [column["name"] for column in shown["inputs"]] == FEATURES


def test_models_register_names_a_missing_label_column(
    runner: CliRunner, artifacts: tuple[Path, Path]
) -> None:
    model, sample = artifacts

    result = runner.invoke(
        app, ["models", "register", "credit", str(model), "--sample", str(sample),
              "--label-column", "default"],
    )  # fmt: skip

    assert result.exit_code != 0
    assert "no label column 'default'" in str(result.exception or result.output)
