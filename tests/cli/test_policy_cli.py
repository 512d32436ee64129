"""`bastion policy tune` on the demo credit model, as a risk analyst types it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bastion.cli import app, main
from bastion.demo.data import FEATURES, LABEL, generate_applications
from bastion.demo.train import TrainedModel, train_model
from bastion.policy.calibration import Calibration
from bastion.policy.tuning import Costs, tune
from bastion.registry import ArtifactStore, Registry
from bastion.spec import load_spec
from bastion.store import Database
from bastion.store.audit import AuditLog

SPEC = """\
version: 1
deployments:
  credit:
    model: credit-risk@production   # follows production
    policy:
      bands: {approve_below: 0.1, decline_at_or_above: 0.5}
"""
COSTS = ["--cost-fp", "1", "--cost-fn", "5", "--cost-review", "0.4"]
CAPACITY = ["--review-capacity", "60", "--daily-volume", "400"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainedModel, Path]:
    folder = tmp_path_factory.mktemp("demo")
    trained = train_model(generate_applications(2000, seed=11), seed=11)
    return trained, trained.save(folder / "credit-risk.txt")


@pytest.fixture
def registry(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    database: Database,
    demo: tuple[TrainedModel, Path],
) -> Registry:
    """The demo model registered in production, the spec and the working folder in place."""
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / ".bastion"))
    monkeypatch.setenv("BASTION_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bastion.yaml").write_text(SPEC, encoding="utf-8")
    trained, artifact = demo
    registry = Registry(database, ArtifactStore(tmp_path / ".bastion" / "artifacts"))
    version = registry.register("credit-risk", artifact, sample=trained.train_frame)
    registry.set_stage(version.ref, "production", actor="test")
    trained.test_frame.to_csv(tmp_path / "holdout.csv", index=False)
    return registry


def _model_scores(demo: tuple[TrainedModel, Path]) -> tuple[np.ndarray, np.ndarray]:
    trained = demo[0]
    scores = np.asarray(trained.booster.predict(trained.test_frame[FEATURES]), dtype=np.float64)
    return scores, trained.test_frame[LABEL].to_numpy()


def tune_json(*args: str) -> dict[str, Any]:
    result = CliRunner().invoke(
        app, ["policy", "tune", "credit", *COSTS, "--json", *args], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    payload: dict[str, Any] = json.loads(result.stdout)
    return payload


@pytest.mark.usefixtures("registry")
def test_tune_scores_the_features_with_the_deployed_model(
    demo: tuple[TrainedModel, Path],
) -> None:
    payload = tune_json("--labels", "holdout.csv", "--label-column", LABEL, *CAPACITY)

    scores, labels = _model_scores(demo)
    expected = tune(scores, labels, Costs(1, 5, 0.4), review_capacity=60, daily_volume=400)
    assert payload["model"] == "credit-risk:1"
    assert payload["chosen"] == pytest.approx(expected.chosen.to_dict())
    assert payload["chosen"]["reviews_per_day"] <= 60
    current = next(a for a in payload["alternatives"] if a["label"] == "current spec")
    assert (current["t_low"], current["t_high"]) == (0.1, 0.5)


@pytest.mark.usefixtures("registry")
def test_tune_prints_the_cost_table_and_the_chosen_point(
    demo: tuple[TrainedModel, Path], tmp_path: Path
) -> None:
    scores, labels = _model_scores(demo)
    pd.DataFrame({"score": scores, "label": labels}).to_parquet(tmp_path / "scored.parquet")

    result = CliRunner().invoke(
        app,
        ["policy", "tune", "credit", "--labels", "scored.parquet", *COSTS, *CAPACITY],
        catch_exceptions=False,
    )

    assert result.exit_code == 0, result.output
    expected = tune(scores, labels, Costs(1, 5, 0.4), review_capacity=60, daily_volume=400)
    out = " ".join(result.stdout.split())
    assert "Cost table" in out
    assert "unlimited review *" in out
    assert f"chosen: approve s < {expected.chosen.t_low:.6g}" in out
    assert f"expected cost {expected.chosen.cost_per_case:.4f} per case" in out
    assert "calibration: ECE" in out


def test_calibrate_without_apply_stores_nothing(registry: Registry) -> None:
    payload = tune_json("--labels", "holdout.csv", "--label-column", LABEL, "--calibrate", "platt")

    assert payload["calibration"]["method"] == "platt"
    assert registry.get("credit-risk:1").calibration is None


def test_calibrate_with_apply_stores_the_map_with_the_bands(
    registry: Registry, database: Database, tmp_path: Path
) -> None:
    payload = tune_json(
        "--labels", "holdout.csv", "--label-column", LABEL, "--calibrate", "isotonic", "--apply"
    )

    stored = registry.get("credit-risk:1").calibration
    assert stored is not None
    assert stored["method"] == "isotonic"
    assert payload["calibration"]["ece_after"] == stored["info"]["ece_after"]
    with database.transaction() as session:
        actions = [e.action for e in AuditLog.list(session, target=None)]
    assert actions[:2] == ["policy.thresholds.applied", "model.calibration_set"]
    # the bands are in calibrated units: values the isotonic map produces
    policy = load_spec(tmp_path / "bastion.yaml").deployments["credit"].policy
    assert policy is not None
    assert policy.bands is not None
    assert policy.bands.decline_at_or_above in {*stored["y"], 0.0, 1.0}


def test_a_stored_calibration_is_applied_before_tuning(
    registry: Registry, demo: tuple[TrainedModel, Path]
) -> None:
    platt = {"method": "platt", "a": 1.0, "b": 1.5}
    registry.set_calibration("credit-risk:1", platt, actor="test")

    payload = tune_json("--labels", "holdout.csv", "--label-column", LABEL)

    scores, labels = _model_scores(demo)
    calibrated = Calibration.from_dict(platt).transform(scores)
    expected = tune(calibrated, labels, Costs(1, 5, 0.4))
    assert payload["stored_calibration_applied"] == "platt"
    assert payload["chosen"]["t_high"] == pytest.approx(expected.chosen.t_high)


def test_apply_writes_the_bands_and_audits(
    registry: Registry, database: Database, tmp_path: Path
) -> None:
    payload = tune_json("--labels", "holdout.csv", "--label-column", LABEL, *CAPACITY, "--apply")

    policy = load_spec(tmp_path / "bastion.yaml").deployments["credit"].policy
    assert policy is not None
    assert policy.bands is not None
    chosen = payload["chosen"]
    assert (policy.bands.approve_below, policy.bands.decline_at_or_above) == (
        chosen["t_low"],
        chosen["t_high"],
    )
    assert "# follows production" in (tmp_path / "bastion.yaml").read_text(encoding="utf-8")
    with database.transaction() as session:
        (event,) = AuditLog.list(session, action="policy.thresholds.applied")
    assert event.target == "credit"
    assert event.details["model"] == "credit-risk:1"
    assert event.details["review_capacity"] == 60
    assert event.details["cost_per_case"] == chosen["cost_per_case"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("registry")
def test_plot_dir_gets_the_png_and_the_page(tmp_path: Path) -> None:
    payload = tune_json("--labels", "holdout.csv", "--label-column", LABEL, "-o", "report")

    assert payload["plots"] == {"png": "report/cost-curve.png", "html": "report/tuning.html"}
    assert (tmp_path / "report" / "cost-curve.png").read_bytes()[:4] == b"\x89PNG"
    assert "Cost table" in (tmp_path / "report" / "tuning.html").read_text(encoding="utf-8")


def _write(path: Path, frame: pd.DataFrame) -> str:
    frame.to_csv(path, index=False)
    return path.name


# Input checks happen before any storage: SQLite is enough.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("registry")
@pytest.mark.parametrize(
    ("frame", "extra", "message"),
    [
        (pd.DataFrame({"score": [0.1, 0.9]}), [], "has no column 'label'"),
        (
            pd.DataFrame({"score": [0.1, 0.9], "label": [0, 2]}),
            [],
            "must hold labels 0 or 1, got 2",
        ),
        (pd.DataFrame({"score": [0.1, 1.9], "label": [0, 1]}), [], "scores within [0, 1]"),
        (pd.DataFrame({"score": [], "label": []}), [], "has no rows"),
        (
            pd.DataFrame({"income": [1.0], "label": [1]}),
            [],
            "lacks input columns of credit-risk:1: debt_ratio",
        ),
        (
            pd.DataFrame({"score": [0.1], "label": [1]}),
            ["--review-capacity", "5"],
            "needs --daily-volume",
        ),
        (
            pd.DataFrame({"score": [0.1], "label": [1]}),
            ["--cost-fp", "-1"],
            "cost_fp must be a finite number ≥ 0",
        ),
    ],
)
def test_bad_input_is_one_clear_line(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    frame: pd.DataFrame,
    extra: list[str],
    message: str,
) -> None:
    name = _write(tmp_path / "cases.csv", frame)

    with pytest.raises(SystemExit) as exit_info:
        main(["policy", "tune", "credit", "--labels", name, *COSTS, *extra])

    assert exit_info.value.code == 2
    assert message in " ".join(capsys.readouterr().err.split())


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.usefixtures("registry")
def test_unknown_deployment_names_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["policy", "tune", "loans", "--labels", "holdout.csv", *COSTS])

    assert "no deployment 'loans' in bastion.yaml (deployments: credit)" in capsys.readouterr().err


def test_policy_commands_have_help() -> None:
    for command in (["policy"], ["policy", "tune"]):
        result = CliRunner().invoke(app, [*command, "--help"])
        assert "Usage" in result.output
