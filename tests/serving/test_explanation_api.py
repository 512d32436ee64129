"""Explanations of decisions: at decision time (all or adverse), and on request through
`GET /v1/decisions/{id}/explanation` with the exact model version the decision used.

The demo credit model (LightGBM) through the real app on SQLite and PostgreSQL.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from bastion.demo.data import FEATURES, generate_applications
from bastion.demo.train import TrainedModel, train_model
from bastion.errors import SpecError
from bastion.registry import ArtifactStore, ModelVersion, Registry
from bastion.settings import Settings
from bastion.spec import Spec
from bastion.store import Database
from bastion.store.tables import DecisionRow
from tests.serving.conftest import DECIDE, fragile_spec, serving
from tests.support import request_rows

CREDIT = "/v1/deployments/credit/decide"
#: declines about a third of the held-out rows of the test model
BANDS = {"approve_below": 0.05, "decline_at_or_above": 0.12}


def credit_spec(mode: str, **explain: Any) -> Spec:
    return Spec.model_validate(
        {
            "deployments": {
                "credit": {
                    "model": "credit@production",
                    "policy": {"bands": BANDS},
                    "explain": {"mode": mode, **explain},
                }
            }
        }
    )


def decide_rows(client: Any, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    response = client.post(CREDIT, json={"instances": rows})
    assert response.status_code == 200, response.text
    decisions: list[dict[str, Any]] = response.json()["decisions"]
    return decisions


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def test_adverse_decisions_carry_reasons_and_a_stored_explanation(
    settings: Settings,
    admin_token: str,
    served_version: ModelVersion,
    credit_model: tuple[Path, TrainedModel],
) -> None:
    reasons = {f: {"code": f"R-{f}", "text": f"Your {f} weighed on the decision"} for f in FEATURES}
    spec = credit_spec("adverse", reasons=reasons, top_k=3)
    with serving(spec, settings, admin_token) as client:
        decisions = decide_rows(client, request_rows(credit_model[1], 40))
        declined = next(d for d in decisions if d["outcome"] == "decline")
        approved = next(d for d in decisions if d["outcome"] == "approve")
        explained = client.get(f"/v1/decisions/{declined['decision_id']}/explanation").json()
        metrics = client.get("/metrics").text

    assert "reasons" not in approved
    assert 1 <= len(declined["reasons"]) <= 3
    assert all(r["contribution"] > 0 for r in declined["reasons"])
    assert explained["computed"] == "at_decision"
    assert explained["reasons"] == declined["reasons"]
    assert explained["model"] == {"name": "credit", "version": served_version.version}
    assert set(explained["contributions"]) == set(FEATURES)
    assert explained["output"] == "log_odds"
    assert explained["margin"] == pytest.approx(logit(declined["prediction"]["score"]), abs=1e-9)
    assert explained["additivity_error"] < 1e-6
    for reason in declined["reasons"]:
        assert reason["code"] == f"R-{reason['field']}"
        assert reason["text"] == f"Your {reason['field']} weighed on the decision"
    top = max(explained["contributions"], key=explained["contributions"].get)
    assert declined["reasons"][0]["field"] == top
    assert 'bastion_explanation_duration_seconds_count{deployment="credit"' in metrics


def test_mode_all_explains_every_decision(
    settings: Settings, admin_token: str, credit_model: tuple[Path, TrainedModel]
) -> None:
    with serving(credit_spec("all"), settings, admin_token) as client:
        decisions = decide_rows(client, request_rows(credit_model[1], 10))

    database = Database(settings.resolved_database_url)
    with database.transaction() as session:
        rows = session.scalars(select(DecisionRow)).all()
        assert len(rows) == 10
        assert all(row.explanation is not None for row in rows)
    database.dispose()
    for decision in decisions:
        assert ("reasons" in decision) == (decision["outcome"] == "decline")


def test_on_request_explanation_is_computed_once_and_stored(
    settings: Settings, admin_token: str, credit_model: tuple[Path, TrainedModel]
) -> None:
    with serving(credit_spec("on_request"), settings, admin_token) as client:
        (decision,) = decide_rows(client, request_rows(credit_model[1], 1))
        path = f"/v1/decisions/{decision['decision_id']}/explanation"
        stored_before = client.get(f"/v1/decisions/{decision['decision_id']}").json()
        first = client.get(path).json()
        second = client.get(path).json()

    assert "reasons" not in decision
    assert stored_before["explanation"] is None
    assert first["computed"] == "on_request"
    assert second == first
    assert first["margin"] == pytest.approx(logit(decision["prediction"]["score"]), abs=1e-9)


def test_old_decision_is_explained_with_the_model_version_it_used(
    settings: Settings,
    admin_token: str,
    served_version: ModelVersion,
    credit_model: tuple[Path, TrainedModel],
    tmp_path: Path,
) -> None:
    rows = request_rows(credit_model[1], 1)
    with serving(credit_spec("on_request"), settings, admin_token) as client:
        (old,) = decide_rows(client, rows)
    newer = train_model(generate_applications(2000, seed=99), seed=99)
    database = Database(settings.resolved_database_url)
    registry = Registry(database, ArtifactStore(settings.artifacts_dir))
    version = registry.register(
        "credit", newer.save(tmp_path / "v2.txt"), sample=newer.train_frame[FEATURES]
    )
    registry.set_stage(version.ref, "production")
    database.dispose()

    with serving(credit_spec("on_request"), settings, admin_token) as client:
        (new,) = decide_rows(client, rows)
        explained = client.get(f"/v1/decisions/{old['decision_id']}/explanation").json()

    assert new["model"]["version"] == version.version != served_version.version
    assert new["prediction"]["score"] != pytest.approx(old["prediction"]["score"])
    assert explained["model"]["version"] == served_version.version
    assert explained["margin"] == pytest.approx(logit(old["prediction"]["score"]), abs=1e-9)


def test_unknown_decision_is_404_and_a_fallback_decision_is_409(
    settings: Settings, fragile_token: str
) -> None:
    spec = fragile_spec({"fallback": {"outcome": "decline", "reason": "DOWN"}})
    with serving(spec, settings, fragile_token) as client:
        failed = client.post(DECIDE, json={"features": {"delay": 0, "explode": 1}}).json()
        unknown = client.get("/v1/decisions/0193a3f0-0000-7000-8000-000000000000/explanation")
        not_an_id = client.get("/v1/decisions/nope/explanation")
        conflict = client.get(f"/v1/decisions/{failed['decision_id']}/explanation")

    assert unknown.status_code == 404
    assert not_an_id.status_code == 404
    assert conflict.status_code == 409
    assert conflict.headers["content-type"] == "application/problem+json"
    assert "without a model output" in conflict.json()["detail"]


def test_explain_method_that_cannot_apply_fails_start_up(
    settings: Settings, fragile_token: str
) -> None:
    spec = fragile_spec(None, explain={"mode": "all", "method": "tree"})

    with (
        pytest.raises(SpecError, match="not a tree ensemble"),
        serving(spec, settings, fragile_token),
    ):
        pass
