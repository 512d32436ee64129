"""A drift scenario that proves the monitor: drifted traffic through a real server, then a window.

The credit model is trained once on undrifted applications and registered with its
training rows and their labels as the sample, so the registry computes its drift reference
(`bastion.monitor.reference`). The deployment serving it is then fed, per drift mode of
`bastion.demo.data` (``income_shift``, ``new_channel``, ``noisy_notes``, ``concept``) and
seed, one window of applications:

1. the window's applications are posted to ``/v1/deployments/credit/decide`` — the whole
   request path: guard, model, policy and the decision log;
2. their true labels arrive as late feedback (the ``feedback`` table, source ``api``);
3. `WindowService.compute` judges the latest decisions as the monitor's background job
   does: drift of every model feature and of the prediction against the reference, with
   the deployment's ``monitor.drift`` configuration, label-based performance and the CBPE
   estimate;
4. the free-text ``note`` is not a model input, so the registered reference does not hold
   it: its text drift (length, out-of-vocabulary rate, non-ASCII share, script) is
   computed here, from the notes in the decision log against the training rows' notes.

`ScenarioResult` says which features were flagged, which of those were stable (false
alarms), whether the prediction drifted, and the AUC with labels and estimated without.
Under ``concept`` no feature moves: the drift monitor must stay quiet while the label-based
AUC drops — and the CBPE estimate, which sees only the scores, cannot see it (its
documented limitation).

The deployment flags (instead of rejecting) categories the training data never saw, so
``app`` applications are served and logged, and scans ``note`` for personal data, which
is what keeps the (redacted) note in the decision log. Its drift configuration uses K-S
for numeric features (Benjamini-Hochberg corrected) rather than Evidently's default
Wasserstein distance, which on windows of a few hundred rows flags stable features too
often (docs/drift-scenario.md has the numbers).

Run it against a local server process (``--help`` for the options)::

    python -m bastion.demo.scenario --mode income_shift --seeds 3
"""

from __future__ import annotations

import os
import signal
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import numpy as np
import pandas as pd
import typer
from sqlalchemy import select

from bastion.demo.data import (
    DRIFTED_COLUMNS,
    DRIFTS,
    FEATURES,
    LABEL,
    REQUEST_COLUMNS,
    Drift,
    generate_applications,
)
from bastion.demo.train import TrainedModel, train_model
from bastion.monitor.drift import DriftReport, compare
from bastion.monitor.methods import DriftConfig
from bastion.monitor.profile import Profile, Schema, profile_frame
from bastion.monitor.windows import WindowResult, WindowService
from bastion.registry import ArtifactStore, ModelVersion, Registry
from bastion.review.feedback import add_feedback
from bastion.spec import Deployment, Spec
from bastion.store import Database
from bastion.store.tables import DecisionRow

if TYPE_CHECKING:  # the tests replay through the app in-process
    from starlette.testclient import TestClient

    Client = httpx.Client | TestClient

MODEL_NAME = "credit-risk"
DEPLOYMENT = "credit"
#: the free-text request field monitored beside the model's features
NOTE = "note"
#: instances per decide request while replaying a window
BATCH = 250
#: what the scenario's monitor checks: the model's features, then the note
MONITORED = (*FEATURES, NOTE)
#: the deployment's drift configuration (K-S for numeric features, see the module docstring)
DRIFT = DriftConfig(num_method="ks")


def scenario_spec(drift: DriftConfig = DRIFT) -> Spec:
    """The served deployment: flag unseen categories, keep the (scanned) note, score bands."""
    return Spec.model_validate(
        {
            "deployments": {
                DEPLOYMENT: {
                    "model": f"{MODEL_NAME}@production",
                    "batching": {"max_batch_size": 64, "max_wait_ms": 1},
                    "guard": {"contract": {"category": "flag"}, "pii": {"scan": [NOTE]}},
                    "policy": {
                        "version": "scenario-1",
                        "bands": {"approve_below": 0.10, "decline_at_or_above": 0.30},
                        "fallback": {"outcome": "review", "reason": "MODEL_UNAVAILABLE"},
                    },
                    # the scenario computes its windows itself; the background job idles
                    "monitor": {
                        "min_rows": 100,
                        "interval_seconds": 3600,
                        "drift": drift.model_dump(exclude_defaults=True),
                    },
                }
            }
        }
    )


@dataclass(frozen=True)
class ScenarioModel:
    """The model every window is scored by, and what its reference was built from.

    ``sample`` is the held-out rows with their labels (what is registered as the
    reference); ``notes`` the profile of their notes, the note's text-drift reference.
    """

    trained: TrainedModel
    path: Path
    sample: pd.DataFrame
    notes: Profile


def train_scenario_model(work: Path, *, rows: int = 6000, seed: int = 11) -> ScenarioModel:
    """Train the credit model on 75 % of `rows` undrifted applications; the other 25 %,
    which the model never saw, become its reference.

    Held out rather than training rows: the reference's labelled scores are what CBPE
    calibrates on, and a model's scores on its own training rows are better than it will
    ever be again (on training rows the estimate said AUC 0.9995 where the truth was 0.79).
    The held-out rows come from the same distribution, so drift is measured the same way.
    """
    frame = generate_applications(rows, seed=seed)
    trained = train_model(frame, seed=seed)
    path = trained.save(work / "credit-risk.txt")
    held_out = frame.loc[trained.test_frame.index]
    notes = profile_frame(held_out[[NOTE]], Schema({NOTE: "text"}))
    return ScenarioModel(trained, path, held_out[[*FEATURES, LABEL]], notes)


def register(database: Database, artifacts: Path, model: ScenarioModel) -> ModelVersion:
    """Register the model with its labelled reference sample and move it to production."""
    registry = Registry(database, ArtifactStore(artifacts))
    version = registry.register(
        MODEL_NAME,
        model.path,
        sample=model.sample,
        label_column=LABEL,
        metrics=model.trained.metrics,
        tags={"source": "drift scenario", "label": LABEL},
    )
    registry.set_stage(version.ref, "production", actor="drift scenario")
    return version


def _plain(value: Any) -> Any:
    if isinstance(value, float) and np.isnan(value):
        return None
    return value.item() if isinstance(value, np.generic) else value


def replay(client: Client, frame: pd.DataFrame, *, batch: int = BATCH) -> list[str]:
    """Post `frame`'s request columns as decide requests; the decision ids, in row order."""
    records = frame[REQUEST_COLUMNS].astype(object).to_dict(orient="records")
    ids: list[str] = []
    for start in range(0, len(records), batch):
        instances = [
            {str(k): _plain(v) for k, v in row.items()} for row in records[start : start + batch]
        ]
        response = client.post(
            f"/v1/deployments/{DEPLOYMENT}/decide", json={"instances": instances}
        )
        if response.status_code != 200:
            raise RuntimeError(f"decide answered {response.status_code}: {response.text[:500]}")
        ids.extend(d["decision_id"] for d in response.json()["decisions"])
    return ids


def logged(database: Database, ids: Sequence[str]) -> pd.DataFrame:
    """The decisions `ids` as the decision log holds them, in that order: the stored
    (redacted) request fields, the model version and the decision id."""
    by_id: dict[str, tuple[dict[str, Any], int]] = {}
    with database.transaction() as session:
        for start in range(0, len(ids), 500):
            query = select(DecisionRow.id, DecisionRow.inputs, DecisionRow.model_version).where(
                DecisionRow.id.in_(list(ids[start : start + 500]))
            )
            by_id.update(
                {row.id: (row.inputs, row.model_version) for row in session.execute(query)}
            )
    missing = len([i for i in ids if i not in by_id])
    if missing:
        raise RuntimeError(f"{missing} of {len(ids)} decisions are not in the decision log")
    return pd.DataFrame(
        [
            {
                **{c: by_id[i][0].get(c) for c in REQUEST_COLUMNS},
                "model_version": by_id[i][1],
                "decision_id": i,
            }
            for i in ids
        ]
    )


def post_labels(database: Database, decisions: pd.DataFrame, labels: Sequence[int]) -> int:
    """Store each decision's true label as late feedback (source ``api``); the count."""
    now = datetime.now(UTC)
    with database.transaction() as session:
        for decision_id, version, label in zip(
            decisions["decision_id"], decisions["model_version"], labels, strict=True
        ):
            add_feedback(
                session,
                decision_id=str(decision_id),
                deployment=DEPLOYMENT,
                model_name=MODEL_NAME,
                model_version=int(version),
                subject_key=None,
                label=int(label),
                source="api",
                sampling_probability=None,
                actor="drift scenario",
                created_at=now,
            )
    return len(labels)


def note_drift(model: ScenarioModel, decisions: pd.DataFrame, config: DriftConfig) -> DriftReport:
    """Text drift of the logged notes against the training rows' notes."""
    window = profile_frame(decisions[[NOTE]], Schema({NOTE: "text"}), model.notes)
    return compare(model.notes, window, config)


@dataclass(frozen=True)
class ScenarioResult:
    """What the monitor made of one drifted window."""

    mode: Drift | None
    seed: int
    #: the features the mode moved, and the monitored features it left alone
    moved: tuple[str, ...]
    stable: tuple[str, ...]
    #: the features the monitor flagged (the note once, whichever descriptor drifted)
    flagged: tuple[str, ...]
    window: WindowResult
    notes: DriftReport
    labels: int

    @property
    def rows(self) -> int:
        return self.window.rows

    @property
    def missed(self) -> tuple[str, ...]:
        return tuple(f for f in self.moved if f not in self.flagged)

    @property
    def false_alarms(self) -> tuple[str, ...]:
        return tuple(f for f in self.stable if f in self.flagged)

    @property
    def prediction_drifted(self) -> bool:
        drift = self.window.drift
        return drift is not None and drift.prediction is not None and drift.prediction.drifted

    @property
    def auc(self) -> float | None:
        """ROC AUC from the late labels."""
        return _number(self.window.performance, "roc_auc")

    @property
    def estimated_auc(self) -> float | None:
        """ROC AUC estimated by CBPE from the scores alone."""
        return _number(self.window.estimated, "roc_auc")

    def summary(self) -> dict[str, Any]:
        """A flat, JSON-ready line for logs and the command's table."""
        return {
            "mode": self.mode or "none",
            "seed": self.seed,
            "rows": self.rows,
            "moved": list(self.moved),
            "flagged": list(self.flagged),
            "missed": list(self.missed),
            "false_alarms": list(self.false_alarms),
            "prediction_drifted": self.prediction_drifted,
            "auc": self.auc,
            "estimated_auc": self.estimated_auc,
        }


def _number(data: dict[str, Any] | None, key: str) -> float | None:
    value = None if data is None else data.get(key)
    return float(value) if isinstance(value, int | float) else None


def run_window(
    client: Client,
    windows: WindowService,
    deployment: Deployment,
    model: ScenarioModel,
    mode: Drift | None,
    *,
    seed: int,
    rows: int = 500,
) -> ScenarioResult:
    """Replay one window of `mode` through the server and judge it (module docstring).

    Windows must be replayed one after another: each is the latest `rows` decisions.
    """
    frame = generate_applications(rows, seed=seed, drift=mode)
    ids = replay(client, frame)
    decisions = logged(windows.database, ids)
    labels = post_labels(windows.database, decisions, frame[LABEL].tolist())
    window = windows.compute(DEPLOYMENT, deployment, rows=len(ids))
    config = (deployment.monitor.drift if deployment.monitor else None) or DriftConfig()
    notes = note_drift(model, decisions, config)
    flagged = {f.feature for f in notes.features if f.drifted}
    if window.drift is not None:
        flagged |= {f.feature for f in window.drift.features if f.drifted}
    moved = DRIFTED_COLUMNS[mode] if mode is not None else ()
    return ScenarioResult(
        mode=mode,
        seed=seed,
        moved=moved,
        stable=tuple(c for c in MONITORED if c not in moved),
        flagged=tuple(c for c in MONITORED if c in flagged),
        window=window,
        notes=notes,
        labels=labels,
    )


cli = typer.Typer(add_completion=False, help=__doc__.split("\n\n")[0] if __doc__ else None)


@cli.command()
def main(
    mode: str = typer.Option(
        ..., help=f"The drift: one of {', '.join(DRIFTS)}, or 'none' for undrifted traffic."
    ),
    seeds: int = typer.Option(1, min=1, max=100, help="Windows to replay, seeds 1, 2, …"),
    rows: int = typer.Option(500, min=100, max=20_000, help="Applications per window."),
    port: int = typer.Option(8765, help="Port of the local server the scenario starts."),
) -> None:
    """Serve the credit model in a local server process, replay drifted windows, print what
    the monitor flagged (SQLite in a temporary folder; nothing is kept)."""
    from rich.console import Console
    from rich.table import Table

    from bastion.demo.run import create_demo_key, start_server, wait_ready
    from bastion.settings import Settings
    from bastion.spec import dump_spec

    if mode != "none" and mode not in DRIFTS:
        raise typer.BadParameter(f"must be one of {', '.join(DRIFTS)} or none", param_hint="--mode")
    drift: Drift | None = None if mode == "none" else mode  # type: ignore[assignment]
    console = Console()
    with tempfile.TemporaryDirectory(prefix="bastion-scenario-") as folder:
        work = Path(folder)
        settings = Settings(home=work / ".bastion")
        database = Database(settings.resolved_database_url)
        database.migrate()
        model = train_scenario_model(work)
        register(database, settings.artifacts_dir, model)
        spec = scenario_spec()
        spec_path = work / "bastion.yaml"
        spec_path.write_text(dump_spec(spec), encoding="utf-8")
        token = create_demo_key(settings)
        env = {**os.environ, "BASTION_HOME": str(settings.home)}
        env.pop("BASTION_DATABASE_URL", None)
        process = start_server(spec_path, port, work / "server.log", env)
        url = f"http://127.0.0.1:{port}"
        windows = WindowService(database, Registry(database, ArtifactStore(settings.artifacts_dir)))
        table = Table(title=f"drift scenario: {mode}, {rows} applications per window")
        for column in (
            "seed",
            "flagged",
            "missed",
            "false alarms",
            "prediction",
            "AUC",
            "CBPE AUC",
        ):
            table.add_column(column)
        try:
            try:
                wait_ready(url, process)
            except RuntimeError:
                console.print((work / "server.log").read_text(encoding="utf-8")[-2000:])
                raise
            headers = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
                for seed in range(1, seeds + 1):
                    result = run_window(
                        client,
                        windows,
                        spec.deployments[DEPLOYMENT],
                        model,
                        drift,
                        seed=seed,
                        rows=rows,
                    )
                    table.add_row(
                        str(seed),
                        ", ".join(result.flagged) or "-",
                        ", ".join(result.missed) or "-",
                        ", ".join(result.false_alarms) or "-",
                        "drifted" if result.prediction_drifted else "stable",
                        _fmt(result.auc),
                        _fmt(result.estimated_auc),
                    )
        finally:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=60)
            database.dispose()
        console.print(table)
        console.print(f"reference ROC AUC (held out): {model.trained.metrics['roc_auc']:.3f}")


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


if __name__ == "__main__":
    cli()
