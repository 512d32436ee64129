"""The drift scenario: each drift mode replayed through the served app, judged by the monitor.

Per mode, 10 seeded windows of 500 applications go through the real request path (guard,
model, policy, decision log) on SQLite; their labels arrive as feedback; the monitor's
`WindowService` judges them. The monitor must flag what the mode moved, every time, and
rarely anything else; under the concept change the label-based AUC must drop while the
label-free CBPE estimate (which sees only scores) does not. One seed per mode runs on
the real PostgreSQL too. The rates are printed and attached to the test report
(``record_property``); docs/drift-scenario.md quotes them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from bastion.demo.data import DRIFTS, Drift
from bastion.demo.scenario import (
    DEPLOYMENT,
    MONITORED,
    ScenarioModel,
    ScenarioResult,
    register,
    run_window,
    scenario_spec,
    train_scenario_model,
)
from bastion.monitor.windows import WindowService
from bastion.registry import ArtifactStore, Registry
from bastion.server.app import app_for
from bastion.settings import Settings
from bastion.store import Database
from tests.credentials import bearer, create_key

SEEDS = range(1, 11)
ROWS = 500
#: stated bound on stable features flagged / stable features tested (measured: see docs)
FALSE_ALARM_BOUND = 0.05
#: how far the label-based AUC must fall under the concept change
CONCEPT_AUC_DROP = 0.15

Results = dict[Drift, list[ScenarioResult]]
RecordProperty = Callable[[str, object], None]


@pytest.fixture(scope="module")
def scenario_model(tmp_path_factory: pytest.TempPathFactory) -> ScenarioModel:
    return train_scenario_model(tmp_path_factory.mktemp("scenario-model"))


def replay_modes(
    work: Path, database_url: str, model: ScenarioModel, seeds: range
) -> Iterator[tuple[Drift, ScenarioResult]]:
    """Serve the model from `database_url` and replay every mode for every seed."""
    settings = Settings(home=work / ".bastion", database_url=database_url)
    database = Database(database_url)
    database.migrate()
    register(database, settings.artifacts_dir, model)
    token = create_key(database_url, "admin")
    spec = scenario_spec()
    windows = WindowService(database, Registry(database, ArtifactStore(settings.artifacts_dir)))
    try:
        with TestClient(app_for(spec, settings), headers=bearer(token)) as client:
            for mode in DRIFTS:
                for seed in seeds:
                    yield (
                        mode,
                        run_window(
                            client,
                            windows,
                            spec.deployments[DEPLOYMENT],
                            model,
                            mode,
                            seed=seed,
                            rows=ROWS,
                        ),
                    )
    finally:
        database.dispose()


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, scenario_model: ScenarioModel) -> Results:
    """Every mode x 10 seeds on SQLite (one served app, windows one after another)."""
    work = tmp_path_factory.mktemp("scenario-sqlite")
    out: Results = {mode: [] for mode in DRIFTS}
    for mode, result in replay_modes(
        work, f"sqlite:///{work / 'bastion.db'}", scenario_model, SEEDS
    ):
        out[mode].append(result)
    return out


def test_every_window_is_judged_in_full(results: Results) -> None:
    for mode, windows in results.items():
        assert [r.seed for r in windows] == list(SEEDS), mode
        for result in windows:
            assert result.rows == ROWS, (mode, result.seed)
            assert result.labels == ROWS
            assert result.window.drift is not None
            assert result.window.performance is not None
            assert result.window.performance["label_coverage"] == pytest.approx(1.0)


@pytest.mark.parametrize("mode", [m for m in DRIFTS if m != "concept"])
def test_monitor_flags_the_drifted_feature_in_every_window(results: Results, mode: Drift) -> None:
    missed = {r.seed: r.missed for r in results[mode] if r.missed}
    assert not missed, f"{mode}: drift missed in windows {missed}"


def test_monitor_rarely_flags_stable_features(
    results: Results, record_property: RecordProperty
) -> None:
    tested = sum(len(r.stable) for windows in results.values() for r in windows)
    alarms = [
        (mode, r.seed, feature)
        for mode, windows in results.items()
        for r in windows
        for feature in r.false_alarms
    ]
    rate = len(alarms) / tested
    per_mode = {
        mode: sum(len(r.false_alarms) for r in windows) / sum(len(r.stable) for r in windows)
        for mode, windows in results.items()
    }
    record_property("false_alarm_rate", rate)
    record_property("false_alarms", alarms)
    print(f"\nfalse alarms: {len(alarms)} / {tested} stable features = {rate:.3f}; {per_mode}")
    print(f"false alarms (mode, seed, feature): {alarms}")
    assert tested == len(SEEDS) * (4 * len(MONITORED) - 3)
    assert rate < FALSE_ALARM_BOUND, alarms


def test_noisy_notes_drift_through_the_text_descriptors(results: Results) -> None:
    for result in results["noisy_notes"]:
        drifted = {f.descriptor for f in result.notes.features if f.drifted}
        # German and Spanish words are out of the reference vocabulary; umlauts and
        # accents are non-ASCII; the script stays Latin
        assert {"oov_rate", "non_ascii"} <= drifted, result.seed
        assert "script" not in drifted


def test_new_channel_is_reported_as_unseen(results: Results) -> None:
    for result in results["new_channel"]:
        assert result.window.drift is not None
        channel = result.window.drift.feature("channel")
        assert 0.2 < channel.unseen_share < 0.4, result.seed


def test_concept_change_drops_the_labelled_auc_but_not_the_estimate(
    results: Results, scenario_model: ScenarioModel, record_property: RecordProperty
) -> None:
    concept = results["concept"]
    before = scenario_model.trained.metrics["roc_auc"]  # on the held-out reference rows
    aucs = [r.auc for r in concept]
    estimates = [r.estimated_auc for r in concept]
    record_property("concept_auc", aucs)
    record_property("concept_estimated_auc", estimates)
    print(f"\nAUC before {before:.3f}; under the concept change {aucs}; CBPE says {estimates}")
    for result in concept:
        assert result.auc is not None
        assert result.estimated_auc is not None
        assert result.auc < before - CONCEPT_AUC_DROP, result.seed
        # the documented limitation: the scores did not move, so neither does the estimate
        assert result.estimated_auc > result.auc + 0.2, result.seed


def test_one_seed_of_every_mode_on_postgresql(
    tmp_path: Path, postgres_url: str, scenario_model: ScenarioModel
) -> None:
    seen = dict(replay_modes(tmp_path, postgres_url, scenario_model, range(1, 2)))
    assert set(seen) == set(DRIFTS)
    for mode, result in seen.items():
        assert result.rows == ROWS
        assert not result.missed, mode
        assert len(result.false_alarms) <= 1, (mode, result.false_alarms)
    concept_auc = seen["concept"].auc
    assert concept_auc is not None
    assert concept_auc < 0.65


def test_scenario_command_replays_through_a_server_process(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from bastion.demo.scenario import cli
    from tests.support import free_port

    port = str(free_port())
    args = ["--mode", "income_shift", "--seeds", "1", "--rows", "200", "--port", port]
    result = CliRunner().invoke(cli, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "income_shift" in result.output
    row = next(line for line in result.output.splitlines() if line.startswith("│ 1"))
    assert "income" in row.split("│")[2]  # flagged
    assert "drifted" in row


def test_scenario_command_refuses_unknown_modes() -> None:
    from typer.testing import CliRunner

    from bastion.demo.scenario import cli

    result = CliRunner().invoke(cli, ["--mode", "weather"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert "must be one of income_shift" in result.output
