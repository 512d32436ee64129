"""`bastion monitor reference | drift | windows` on the local database, both backends."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner, Result

from bastion.cli import app, main
from bastion.demo.data import LABEL, generate_applications
from bastion.demo.train import TrainedModel, train_model
from bastion.settings import Settings
from bastion.store import Database
from tests.monitor.monitoring import ROWS, Logged, log_decisions

COMMANDS = ("reference", "drift", "windows")


@pytest.fixture(scope="module")
def credit_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainedModel]:
    trained = train_model(generate_applications(3000, seed=11), seed=11)
    return trained.save(tmp_path_factory.mktemp("model") / "credit.txt"), trained


@pytest.fixture
def logged(
    tmp_path: Path,
    database_url: str,
    credit_model: tuple[Path, TrainedModel],
    monkeypatch: pytest.MonkeyPatch,
) -> Iterator[Logged]:
    """Decisions in this machine's database and the spec as bastion.yaml in the cwd."""
    settings = Settings(home=tmp_path / ".bastion", database_url=database_url)
    monkeypatch.setenv("BASTION_HOME", str(settings.home))
    monkeypatch.setenv("BASTION_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    database = Database(database_url)
    try:
        logged = log_decisions(settings, credit_model, database)
        spec = logged.spec.model_dump(mode="json", exclude_defaults=True)
        (tmp_path / "bastion.yaml").write_text(yaml.safe_dump(spec))
        yield logged
    finally:
        database.dispose()


def monitor(*args: str) -> Result:
    result = CliRunner().invoke(app, ["monitor", *args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result


def test_drift_json_flags_the_shifted_feature(logged: Logged) -> None:
    body = json.loads(monitor("drift", "credit", "--rows", str(ROWS), "--json").stdout)

    assert body["rows"] == ROWS
    assert [f["feature"] for f in body["drift"]["features"] if f["drifted"]] == ["income"]
    assert body["id"] is None, "not stored without --store"


def test_drift_table_lists_the_drifted_feature_first(logged: Logged) -> None:
    out = monitor("drift", "credit", "--rows", str(ROWS)).stdout

    rows = [line for line in out.splitlines() if "│" in line and "feature" not in line]
    assert "income" in rows[0]
    assert "DRIFT" in rows[0]
    assert "data set not drifted: 1 of 8 features" in out


def test_drift_since_an_age_and_store_then_windows(logged: Logged) -> None:
    stored = json.loads(monitor("drift", "credit", "--since", "1h", "--store", "--json").stdout)
    listed = json.loads(monitor("windows", "credit", "--json").stdout)
    table = monitor("windows", "credit").stdout

    assert stored["rows"] == 2 * ROWS
    assert [w["id"] for w in listed] == [stored["id"]]
    assert "credit:1" in table


def test_reference_replaces_the_reference_with_labels(logged: Logged, tmp_path: Path) -> None:
    data = tmp_path / "reference.csv"
    generate_applications(500, seed=3).to_csv(data, index=False)

    out = monitor("reference", "credit:1", "--data", str(data), "--label-column", LABEL).stdout

    assert "500 rows" in out
    assert "with labels" in out
    logged.service.forget("credit", 1)  # the service cached the old one
    reference = logged.service.load_reference("credit", 1)
    assert reference.profile.rows == 500
    assert reference.labels is not None


def test_errors_are_one_clear_line(logged: Logged, capsys: pytest.CaptureFixture[str]) -> None:
    for argv in (
        ["monitor", "drift", "credit", "--since", "1h", "--rows", "5"],
        ["monitor", "drift", "credit", "--since", "yesterday"],
        ["monitor", "drift", "nope"],
        ["monitor", "reference", "credit:1", "--data", "missing.csv"],
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2

    err = capsys.readouterr().err
    assert "a time range or a number of rows, not both" in err
    assert "--since must be an ISO time" in err
    assert "the spec has no deployment 'nope' (deployments: credit)" in err
    assert "no data file at missing.csv" in err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command: str) -> None:
    result = CliRunner().invoke(app, ["monitor", command, "--help"])

    assert result.exit_code == 0
    assert "Usage" in result.output
