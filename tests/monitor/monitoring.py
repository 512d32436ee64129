"""Shared by the monitor service tests: a credit model registered with a labelled sample,
a monitored spec serving it, and decisions posted through the real app."""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from starlette.testclient import TestClient

from bastion.demo.data import FEATURES, LABEL, generate_applications
from bastion.demo.train import TrainedModel
from bastion.monitor.windows import WindowService
from bastion.registry import ArtifactStore, ModelVersion, Registry
from bastion.review.feedback import add_feedback
from bastion.server.app import app_for
from bastion.settings import Settings
from bastion.spec import Spec
from bastion.store import Database
from tests.credentials import bearer, create_key

DECIDE = "/v1/deployments/credit/decide"
#: the policy bands of the monitored deployment
BANDS = {"approve_below": 0.1, "decline_at_or_above": 0.3}
#: decisions per batch in `log_decisions`
ROWS = 400


@dataclass
class Logged:
    """Two batches of decisions in the log: stable rows, then the same rows with income
    x 2.5 (every other column exactly as stable as before)."""

    service: WindowService
    spec: Spec
    token: str
    started: datetime
    middle: datetime
    shifted: list[dict[str, Any]]
    shifted_labels: list[int]


def log_decisions(
    settings: Settings, credit_model: tuple[Path, TrainedModel], database: Database
) -> Logged:
    """Register credit:1 (labelled sample) and post `ROWS` stable, then `ROWS` shifted rows."""
    register_credit(settings, credit_model)
    token = create_key(settings.resolved_database_url, "admin")
    spec = monitored_spec(window_rows=ROWS, interval_seconds=3600)
    shifted_frame = applications(ROWS, seed=5, income=2.5)
    started = datetime.now(UTC)
    with serving(spec, settings, token) as client:
        decide(client, applications(ROWS, seed=5))
        middle = datetime.now(UTC)
        shifted = decide(client, shifted_frame)
    registry = Registry(database, ArtifactStore(settings.artifacts_dir))
    return Logged(
        WindowService(database, registry),
        spec,
        token,
        started,
        middle,
        shifted,
        shifted_frame[LABEL].tolist(),
    )


def register_credit(
    settings: Settings, credit_model: tuple[Path, TrainedModel], *, labelled: bool = True
) -> ModelVersion:
    """credit:1 with its held-out rows as the sample (and their labels, when `labelled`)."""
    path, trained = credit_model
    database = Database(settings.resolved_database_url)
    database.migrate()
    try:
        registry = Registry(database, ArtifactStore(settings.artifacts_dir))
        sample = trained.test_frame if labelled else trained.test_frame[FEATURES]
        return registry.register(
            "credit", path, sample=sample, label_column=LABEL if labelled else None
        )
    finally:
        database.dispose()


def monitored_spec(**monitor: Any) -> Spec:
    """Deployment `credit` serving credit:1 with policy bands and a monitor section."""
    return Spec.model_validate(
        {
            "deployments": {
                "credit": {
                    "model": "credit:1",
                    "batching": {"max_batch_size": 64, "max_wait_ms": 1},
                    "policy": {"bands": BANDS},
                    "monitor": {"min_rows": 50, **monitor},
                }
            }
        }
    )


def applications(n: int, seed: int, **scale: float) -> pd.DataFrame:
    """Fresh applications from the demo generator; `scale` multiplies numeric columns."""
    frame = generate_applications(n, seed=seed)
    for column, factor in scale.items():
        frame[column] = frame[column] * factor
    return frame


def instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as request feature objects (NaN sent as null)."""
    rows = frame[FEATURES].to_dict(orient="records")
    return [
        {str(k): None if isinstance(v, float) and math.isnan(v) else v for k, v in row.items()}
        for row in rows
    ]


@contextmanager
def serving(spec: Spec, settings: Settings, token: str) -> Iterator[TestClient]:
    with TestClient(app_for(spec, settings), headers=bearer(token)) as client:
        yield client


def decide(client: TestClient, frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Post the rows as decisions (100 per request); the decisions in order."""
    rows = instances(frame)
    decisions: list[dict[str, Any]] = []
    for start in range(0, len(rows), 100):
        response = client.post(DECIDE, json={"instances": rows[start : start + 100]})
        assert response.status_code == 200, response.text
        decisions += response.json()["decisions"]
    return decisions


def label(database: Database, decisions: list[dict[str, Any]], labels: list[int]) -> None:
    """Record a late label for each decision (source: api)."""
    with database.transaction() as session:
        for decision, value in zip(decisions, labels, strict=True):
            add_feedback(
                session,
                decision_id=decision["decision_id"],
                deployment="credit",
                model_name="credit",
                model_version=1,
                subject_key=None,
                label=value,
                source="api",
                sampling_probability=None,
                actor="test",
                created_at=datetime.now(UTC),
            )
