"""The guard on the request path: input contract, OOD score, findings in response, record and
metrics, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from starlette.testclient import TestClient

from bastion.demo.data import FEATURES
from bastion.demo.train import TrainedModel
from bastion.errors import SpecError
from bastion.registry import ModelVersion
from bastion.server.app import app_for
from bastion.settings import Settings
from bastion.spec import Spec, parse_spec
from tests.credentials import bearer

DECIDE = "/v1/deployments/credit/decide"


@pytest.fixture
def guarded_spec(served_version: ModelVersion) -> Spec:
    return parse_spec(
        """
deployments:
  credit:
    model: credit@production
    batching: {max_batch_size: 32, max_wait_ms: 1}
    guard:
      contract: {range: flag, category: reject, required: reject, type: reject}
      ood: {enabled: true}
"""
    )


@pytest.fixture
def client(guarded_spec: Spec, settings: Settings, admin_token: str) -> Iterator[TestClient]:
    with TestClient(app_for(guarded_spec, settings), headers=bearer(admin_token)) as test_client:
        yield test_client


def _typical(trained: TrainedModel) -> dict[str, Any]:
    """A complete test row near the middle of the training data."""
    frame = trained.test_frame[FEATURES].dropna()
    numeric = frame.select_dtypes("number")
    distance = ((numeric - numeric.median()) / numeric.std()).abs().sum(axis=1)
    row = frame.iloc[int(np.argmin(distance.to_numpy()))].to_dict()
    return {str(k): (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}


def test_served_version_has_a_reference_profile(served_version: ModelVersion) -> None:
    assert served_version.reference_profile is not None
    assert served_version.reference_profile["format"] == "bastion.ood/1"


def test_contract_reject_lists_every_violation(
    client: TestClient, credit_model: tuple[Path, TrainedModel]
) -> None:
    features = _typical(credit_model[1])
    del features["age"]
    features["income"] = "lots"
    features["channel"] = "carrier pigeon"

    response = client.post(DECIDE, json={"features": features})

    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    errors = {e["field"]: e["message"] for e in response.json()["errors"]}
    assert set(errors) == {"features.age", "features.income", "features.channel"}
    assert errors["features.age"].startswith("required:")
    assert errors["features.income"].startswith("type:")
    assert errors["features.channel"].startswith("category:")
    by_field = {e["field"]: e for e in response.json()["errors"]}
    assert {f: e["rule"] for f, e in by_field.items()} == {
        "features.age": "required",
        "features.income": "type",
        "features.channel": "category",
    }
    assert "carrier pigeon" in by_field["features.channel"]["value"]
    metrics = client.get("/metrics").text
    assert (
        'bastion_guard_findings_total{action="reject",deployment="credit",rule="category"} 1.0'
        in metrics
    )


def test_contract_flag_serves_with_findings_in_response_and_record(
    client: TestClient, credit_model: tuple[Path, TrainedModel]
) -> None:
    features = {**_typical(credit_model[1]), "amount": 10_000_000.0}

    response = client.post(DECIDE, json={"features": features})

    assert response.status_code == 200, response.text
    guard = response.json()["guard"]
    assert [(f["field"], f["rule"], f["action"]) for f in guard["findings"]] == [
        ("amount", "range", "flag")
    ]
    record = client.get(f"/v1/decisions/{response.json()['decision_id']}").json()
    assert record["guard"] == guard
    metrics = client.get("/metrics").text
    assert (
        'bastion_guard_findings_total{action="flag",deployment="credit",rule="range"} 1.0'
        in metrics
    )


def test_ood_flags_a_shifted_row_and_not_a_typical_one(
    client: TestClient, credit_model: tuple[Path, TrainedModel]
) -> None:
    typical = _typical(credit_model[1])
    shifted = {**typical, "income": typical["income"] * 50, "utilization": 1.2}

    response = client.post(DECIDE, json={"instances": [typical, shifted]})

    assert response.status_code == 200, response.text
    calm, far = (d["guard"]["ood"] for d in response.json()["decisions"])
    assert not calm["flagged"]
    assert calm["score"] < calm["threshold"]
    assert far["flagged"]
    assert "income" in far["outside"]
    stored = client.get(f"/v1/decisions/{response.json()['decisions'][1]['decision_id']}").json()
    assert stored["guard"]["ood"]["score"] == pytest.approx(far["score"])
    metrics = client.get("/metrics").text
    assert 'bastion_ood_flagged_total{deployment="credit"} 1.0' in metrics
    assert 'bastion_ood_score_count{deployment="credit"} 2.0' in metrics


def test_ood_disabled_gives_no_verdict(
    settings: Settings, admin_token: str, credit_model: tuple[Path, TrainedModel]
) -> None:
    spec = parse_spec(
        "deployments:\n  credit:\n    model: credit@production\n    guard: {ood: {enabled: false}}\n"
    )
    with TestClient(app_for(spec, settings), headers=bearer(admin_token)) as client:
        response = client.post(DECIDE, json={"features": _typical(credit_model[1])})

    assert response.status_code == 200, response.text
    assert response.json()["guard"]["ood"] is None


def _tensors(row: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {"name": name, "datatype": "BYTES", "shape": [1], "data": [row[name]]}
        if isinstance(row[name], str)
        else {"name": name, "datatype": "FP64", "shape": [1], "data": [float(row[name])]}
        for name in FEATURES
    ]


def test_oip_infer_runs_the_same_guard(
    client: TestClient, credit_model: tuple[Path, TrainedModel]
) -> None:
    typical = _typical(credit_model[1])
    flagged = {**typical, "amount": 10_000_000.0}
    rejected = {**typical, "channel": "carrier pigeon"}

    served = client.post("/v2/models/credit/infer", json={"inputs": _tensors(flagged)})
    refused = client.post("/v2/models/credit/infer", json={"inputs": _tensors(rejected)})

    assert served.status_code == 200, served.text
    assert "guard" not in served.json()
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["inputs[0].channel"]
    metrics = client.get("/metrics").text
    assert (
        'bastion_guard_findings_total{action="flag",deployment="credit",rule="range"} 1.0'
        in metrics
    )
    assert 'bastion_ood_score_count{deployment="credit"} 1.0' in metrics


def test_redacted_model_view_of_a_numeric_personal_field_fails_start_up(
    settings: Settings, admin_token: str
) -> None:
    spec = parse_spec(
        """
deployments:
  credit:
    model: credit@production
    guard: {pii: {fields: {income: mask}, model_sees: redacted}}
"""
    )

    with (
        pytest.raises(SpecError, match=r"deployments\.credit\.guard\.pii\.fields\.income"),
        TestClient(app_for(spec, settings)),
    ):
        pass
