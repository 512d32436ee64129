"""A served demo credit model with review tasks waiting, for the console's page tests.

The tasks are made the way the request path makes them (`new_task_values`, one per stored
decision) and each decision gets a fixed explanation, so the pages are tested on their own,
without depending on the policy engine's routing; the browser test runs the whole path.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from starlette.testclient import TestClient

from bastion.demo.data import generate_applications
from bastion.demo.train import TrainedModel, train_model
from bastion.registry import ArtifactStore, Registry
from bastion.review import new_task_values
from bastion.server.app import app_for
from bastion.settings import Settings
from bastion.spec import parse_spec
from bastion.store import Database
from bastion.store.tables import DecisionRow, FeedbackRow, ReviewTaskRow
from tests.credentials import bearer, create_key
from tests.support import request_rows

SPEC = """
deployments:
  credit:
    model: credit@production
    batching: {max_batch_size: 8, max_wait_ms: 1}
  other:
    model: credit@production
"""
#: the explanation stored with every decision of these tests
EXPLANATION: dict[str, Any] = {
    "method": "tree_shap",
    "base_value": -1.2,
    "output": "log_odds",
    "margin": -0.35,
    "additivity_error": 0.0,
    "contributions": {
        "debt_ratio": 0.9,
        "income": -0.45,
        "utilization": 0.3,
        "age": -0.05,
        "<b>injected</b>": 0.15,
    },
    "reasons": [{"field": "debt_ratio", "code": "DEBT_HIGH", "text": "debt_ratio is high"}],
}


@pytest.fixture(scope="session")
def credit_model(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, TrainedModel]:
    """The demo's LightGBM credit model, trained once per session."""
    trained = train_model(generate_applications(2000, seed=5), seed=5)
    return trained.save(tmp_path_factory.mktemp("console-model") / "credit.txt"), trained


@dataclass
class Console:
    """A running app (TestClient), its database, keys by role and the waiting tasks."""

    client: TestClient
    database: Database
    database_url: str
    tokens: dict[str, str]
    tasks: list[str]
    settings: Settings

    def sign_in(self, role: str = "review") -> Any:
        page = self.client.get("/console/review/sign-in")
        return self.client.post(
            "/console/review/sign-in",
            data={"api_key": self.tokens[role], "csrf_token": csrf_of(page.text)},
            follow_redirects=False,
        )

    def feedback(self) -> list[FeedbackRow]:
        with self.database.transaction() as session:
            return list(session.scalars(select(FeedbackRow)))

    def task(self, task_id: str) -> ReviewTaskRow:
        with self.database.transaction() as session:
            row = session.get(ReviewTaskRow, task_id)
            assert row is not None
            session.expunge(row)
            return row


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def add_tasks(database: Database, decision_ids: list[str], deployment: str) -> list[str]:
    """A review task for each decision (priorities descending), with the fixed explanation."""
    now = datetime.now(UTC)
    ids = []
    with database.transaction() as session:
        for index, decision_id in enumerate(decision_ids):
            values = new_task_values(
                decision_id=decision_id,
                deployment=deployment,
                subject_key=None,
                created_at=now,
                priority=float(len(decision_ids) - index),
                reason="band",
                sampling_probability=1.0,
                model_outcome="decline",
                sla_minutes=60,
            )
            session.execute(insert(ReviewTaskRow).values(**values))
            session.execute(
                update(DecisionRow)
                .where(DecisionRow.id == decision_id)
                .values(explanation=EXPLANATION)
            )
            ids.append(values["id"])
    return ids


@pytest.fixture
def console(
    tmp_path: Path, database_url: str, credit_model: tuple[Path, TrainedModel]
) -> Iterator[Console]:
    path, trained = credit_model
    settings = Settings(home=tmp_path / ".bastion", database_url=database_url)
    database = Database(database_url)
    database.migrate()
    registry = Registry(database, ArtifactStore(settings.artifacts_dir))
    version = registry.register("credit", path, sample=trained.train_frame.head(500))
    registry.set_stage(version.ref, "production")
    tokens = {role: create_key(database_url, role) for role in ("review", "admin", "predict")}
    try:
        with TestClient(app_for(parse_spec(SPEC), settings)) as client:
            ids = []
            for row in request_rows(trained, 3):
                response = client.post(
                    "/v1/deployments/credit/decide",
                    json={"features": row},
                    headers=bearer(tokens["admin"]),
                )
                assert response.status_code == 200, response.text
                ids.append(response.json()["decision_id"])
            tasks = add_tasks(database, ids, "credit")
            yield Console(client, database, database_url, tokens, tasks, settings)
    finally:
        database.dispose()
