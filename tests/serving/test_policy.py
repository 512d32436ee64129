"""The decision policy on `/v1` decide: rules, bands, calibration, rule errors, start-up checks.

Through the real app on SQLite and PostgreSQL. Most tests serve `FragileModel`, whose score
is always 0.25, so every band and rule outcome is known in advance.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from starlette.testclient import TestClient

from bastion.demo.train import TrainedModel
from bastion.errors import SpecError
from bastion.registry import ArtifactStore, ModelVersion, Registry
from bastion.server.app import app_for
from bastion.server.openapi_schemas import DECISION
from bastion.settings import Settings
from bastion.spec import Spec, parse_spec
from bastion.store import Database
from tests.serving.conftest import APPROVE_BANDS, DECIDE, fragile_spec, serving
from tests.support import request_rows


def decide(client: TestClient, path: str = DECIDE, **features: Any) -> dict[str, Any]:
    row = {"delay": 0.0, "explode": 0, **features}
    response = client.post(path, json={"features": row})
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_first_true_rule_decides_with_its_reason(settings: Settings, fragile_token: str) -> None:
    policy = {
        "rules": [
            {"name": "slow", "when": "features.delay > 0.01", "outcome": "decline", "reason": "R1"},
            {
                "name": "slower",
                "when": "features.delay > 0.02",
                "outcome": "review",
                "reason": "R2",
            },
        ],
        "bands": APPROVE_BANDS,
    }
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        body = decide(client, delay=0.03)

    assert body["outcome"] == "decline"
    assert body["policy"]["source"] == "rule"
    assert body["policy"]["rule"] == "slow"
    assert body["policy"]["reason"] == "R1"
    assert body["fallback"] is False


def test_bands_decide_when_no_rule_fires(settings: Settings, fragile_token: str) -> None:
    policy = {
        "rules": [
            {"name": "slow", "when": "features.delay > 1.0", "outcome": "decline", "reason": "R1"}
        ],
        "bands": APPROVE_BANDS,
    }
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        body = decide(client)

    assert body["prediction"]["score"] == pytest.approx(0.25)
    assert body["outcome"] == "approve"
    assert body["policy"]["source"] == "band"
    assert body["policy"]["band"] == "approve"
    assert body["policy"]["rule"] is None


def test_rules_see_whole_numbers_as_doubles(settings: Settings, fragile_token: str) -> None:
    # `explode` arrives as the JSON integer 0; arithmetic with a double must still work.
    policy = {
        "rules": [
            {
                "name": "math",
                "when": "features.explode * 2.5 < 1.0",
                "outcome": "decline",
                "reason": "R",
            }
        ],
        "bands": APPROVE_BANDS,
    }
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        body = decide(client, explode=0)

    assert body["outcome"] == "decline"
    assert body["policy"]["rule_errors"] == []


def test_rules_see_the_prediction_and_the_request(settings: Settings, fragile_token: str) -> None:
    policy = {
        "rules": [
            {
                "name": "anonymous_risky",
                "when": "!request.subject_present && prediction.score > 0.2 && request.api == 'decide'",
                "outcome": "review",
                "reason": "ANON",
            }
        ],
        "bands": APPROVE_BANDS,
    }
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        anonymous = decide(client)
        known = client.post(
            DECIDE, json={"subject_id": "s-1", "features": {"delay": 0, "explode": 0}}
        )

    assert anonymous["outcome"] == "review"
    assert known.json()["outcome"] == "approve"


def test_decision_record_stores_the_policy_block(settings: Settings, fragile_token: str) -> None:
    spec = fragile_spec({"bands": APPROVE_BANDS, "version": "credit-2026-11"})
    with serving(spec, settings, fragile_token) as client:
        body = decide(client)
        stored = client.get(f"/v1/decisions/{body['decision_id']}").json()

    assert stored["policy"] == body["policy"]
    assert stored["policy"]["version"] == "credit-2026-11"
    assert stored["outcome"] == "approve"


def test_policy_version_defaults_to_a_content_hash(settings: Settings, fragile_token: str) -> None:
    spec = fragile_spec({"bands": APPROVE_BANDS})
    policy = spec.deployments["fragile"].policy
    assert policy is not None
    with serving(spec, settings, fragile_token) as client:
        body = decide(client)

    assert body["policy"]["version"] == policy.resolved_version
    assert len(body["policy"]["version"]) == 12


def test_failing_rule_is_skipped_counted_and_recorded(
    settings: Settings, fragile_token: str
) -> None:
    policy = {
        "rules": [
            {"name": "typo", "when": "features.dealy > 1.0", "outcome": "decline", "reason": "R1"}
        ],
        "bands": APPROVE_BANDS,
    }
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        first = decide(client)
        decide(client)
        metrics = client.get("/metrics").text

    assert first["outcome"] == "approve", "a failing rule is skipped, the bands decide"
    assert first["policy"]["rule_errors"] == [{"rule": "typo", "message": "no such key: dealy"}]
    assert 'bastion_rule_errors_total{deployment="fragile",rule="typo"} 2.0' in metrics


def test_failing_rule_under_fallback_setting_applies_the_fallback(
    settings: Settings, fragile_token: str
) -> None:
    policy = {
        "rules": [
            {"name": "typo", "when": "features.dealy > 1.0", "outcome": "decline", "reason": "R1"}
        ],
        "on_rule_error": "fallback",
        "bands": APPROVE_BANDS,
        "fallback": {"outcome": "decline", "reason": "RULE_FAILED"},
    }
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        body = decide(client)

    assert body["outcome"] == "decline"
    assert body["policy"]["source"] == "fallback"
    assert body["policy"]["reason"] == "RULE_FAILED"
    assert body["fallback"] is True


def test_rule_that_is_not_a_bool_is_a_rule_error_not_a_500(
    settings: Settings, fragile_token: str
) -> None:
    policy = {
        "rules": [
            {"name": "number", "when": "features.delay + 1.0", "outcome": "decline", "reason": "R"}
        ],
        "bands": APPROVE_BANDS,
    }
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        body = decide(client)

    assert body["outcome"] == "approve"
    assert body["policy"]["rule_errors"][0]["rule"] == "number"


def test_decisions_and_rule_hits_are_counted(settings: Settings, fragile_token: str) -> None:
    policy = {
        "rules": [
            {"name": "slow", "when": "features.delay > 0.01", "outcome": "decline", "reason": "R1"}
        ],
        "bands": APPROVE_BANDS,
    }
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        decide(client, delay=0.02)
        decide(client)
        decide(client)
        metrics = client.get("/metrics").text

    assert (
        'bastion_decisions_total{deployment="fragile",outcome="approve",source="band"} 2.0'
        in metrics
    )
    assert (
        'bastion_decisions_total{deployment="fragile",outcome="decline",source="rule"} 1.0'
        in metrics
    )
    assert 'bastion_rule_hits_total{deployment="fragile",rule="slow"} 1.0' in metrics


def test_without_policy_the_outcome_is_the_label_and_no_policy_block(
    settings: Settings, fragile_token: str
) -> None:
    with serving(fragile_spec(None), settings, fragile_token) as client:
        body = decide(client)
        metrics = client.get("/metrics").text

    assert body["outcome"] == 0
    assert "policy" not in body
    assert "fallback" not in body
    assert 'bastion_decisions_total{deployment="fragile",outcome="0",source="model"} 1.0' in metrics


@pytest.mark.parametrize(
    ("policy", "field"),
    [
        ({"value_bands": [{"name": "all", "outcome": "approve"}]}, "value_bands"),
        ({"review": {"capacity": 5}}, "review.overflow"),
    ],
)
def test_policy_that_cannot_apply_to_the_model_fails_start_up(
    settings: Settings, fragile_token: str, policy: dict[str, Any], field: str
) -> None:
    app = app_for(fragile_spec(policy), settings)

    with pytest.raises(SpecError) as raised, TestClient(app):
        pass

    assert raised.value.errors[0].field == f"deployments.fragile.policy.{field}"


def test_oip_inference_stays_pure_inference(settings: Settings, fragile_token: str) -> None:
    policy = {
        "rules": [{"name": "all", "when": "true", "outcome": "decline", "reason": "R"}],
        "bands": APPROVE_BANDS,
    }
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        response = client.post(
            "/v2/models/fragile/infer",
            json={
                "inputs": [
                    {"name": "delay", "datatype": "FP64", "shape": [1], "data": [0.0]},
                    {"name": "explode", "datatype": "INT64", "shape": [1], "data": [0]},
                ]
            },
        )

    assert response.status_code == 200, response.text
    assert "decline" not in response.text


@pytest.fixture
def credit_spec(served_version: ModelVersion) -> Spec:
    return parse_spec(
        """
deployments:
  credit:
    model: credit@production
    batching: {max_batch_size: 16, max_wait_ms: 1}
    policy:
      rules:
        - {name: too_young, when: "features.age < 21.0", outcome: decline, reason: AGE}
      bands: {approve_below: 0.1, decline_at_or_above: 0.3}
"""
    )


def _expected(score: float, age: float) -> str:
    if age < 21:
        return "decline"
    return "approve" if score < 0.1 else "review" if score < 0.3 else "decline"


def test_many_instances_are_decided_in_order(
    credit_spec: Spec,
    settings: Settings,
    admin_token: str,
    credit_model: tuple[Path, TrainedModel],
) -> None:
    rows = request_rows(credit_model[1], 80)  # above the inline limit: a worker thread decides
    with serving(credit_spec, settings, admin_token) as client:
        response = client.post("/v1/deployments/credit/decide", json={"instances": rows})

    assert response.status_code == 200, response.text
    decisions = response.json()["decisions"]
    outcomes = [d["outcome"] for d in decisions]
    assert outcomes == [
        _expected(d["prediction"]["score"], row["age"])
        for d, row in zip(decisions, rows, strict=True)
    ]
    assert len(set(outcomes)) > 1


def test_calibration_of_the_version_is_applied_before_the_bands(
    credit_spec: Spec,
    settings: Settings,
    admin_token: str,
    served_version: ModelVersion,
    credit_model: tuple[Path, TrainedModel],
) -> None:
    database = Database(settings.resolved_database_url)
    Registry(database, ArtifactStore(settings.artifacts_dir)).set_calibration(
        served_version.ref, {"method": "platt", "a": 1.0, "b": -1.0}, actor="tests"
    )
    database.dispose()
    rows = request_rows(credit_model[1], 20)
    with serving(credit_spec, settings, admin_token) as client:
        decisions = client.post("/v1/deployments/credit/decide", json={"instances": rows}).json()[
            "decisions"
        ]
        stored = client.get(f"/v1/decisions/{decisions[0]['decision_id']}").json()

    for decision, row in zip(decisions, rows, strict=True):
        raw = decision["policy"]["raw_score"]
        logit = math.log(raw / (1 - raw))
        assert decision["prediction"]["score"] == pytest.approx(1 / (1 + math.exp(1.0 - logit)))
        assert decision["prediction"]["raw_score"] == raw
        assert decision["policy"]["calibrated"] is True
        assert decision["outcome"] == _expected(decision["prediction"]["score"], row["age"])
    assert stored["policy"]["raw_score"] == decisions[0]["policy"]["raw_score"]


def test_policy_responses_match_the_documented_schema(
    settings: Settings, fragile_token: str
) -> None:
    policy = {
        "rules": [
            {"name": "slow", "when": "features.delay > 0.5", "outcome": "decline", "reason": "S"}
        ],
        "bands": {"approve_below": 0.2, "decline_at_or_above": 0.4},
    }
    with serving(fragile_spec(policy), settings, fragile_token) as client:
        bodies = [
            decide(client),  # review band, with a task
            client.post(DECIDE, json={"features": {"delay": 0, "explode": 1}}).json(),
        ]

    # jsonschema_rs comes with schemathesis, which checks the served document the same way
    validator = jsonschema_rs.Draft202012Validator(DECISION)
    for body in bodies:
        validator.validate(body)
    assert bodies[0]["policy"]["review"] is not None
    assert bodies[1]["fallback"] is True


def test_rule_errors_are_logged_once_a_minute_without_values(
    settings: Settings, fragile_token: str, caplog: pytest.LogCaptureFixture
) -> None:
    policy = {
        "rules": [
            {
                "name": "mixed",
                "when": "features.delay + 1 > 2.0",
                "outcome": "decline",
                "reason": "R",
            }
        ],
        "bands": APPROVE_BANDS,
    }
    with (
        caplog.at_level(logging.WARNING, logger="bastion.serving.policy_stage"),
        serving(fragile_spec(policy), settings, fragile_token) as client,
    ):
        for _ in range(3):
            decide(client, delay=0.0123456)

    lines = [r.getMessage() for r in caplog.records if r.name == "bastion.serving.policy_stage"]
    assert len(lines) == 1
    assert "mixed" in lines[0]
    assert "0.0123456" not in caplog.text
