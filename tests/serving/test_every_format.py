"""Done-when: a model of every supported format serves through both APIs, unchanged.

Each model from `tests.model_cases` is registered, served by the real app, and scored
through `/v1/.../decide` and OIP `infer`; both must equal what the model's own library
predicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from starlette.testclient import TestClient

from bastion.registry import ArtifactStore, Registry
from bastion.server.app import app_for
from bastion.settings import Settings
from bastion.spec import parse_spec
from bastion.store import Database
from tests.credentials import bearer, create_key
from tests.model_cases import BUILDERS, Case


@pytest.fixture(params=list(BUILDERS))
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Case, TestClient]]:
    (tmp_path / "model").mkdir()
    case: Case = BUILDERS[request.param](tmp_path / "model")
    settings = Settings(home=tmp_path / ".bastion")
    database = Database(settings.resolved_database_url)
    database.migrate()
    source = case.options.extra.get("target", case.path)
    Registry(database, ArtifactStore(settings.artifacts_dir)).register(
        "model", source, framework=case.format_name, sample=case.frame, options=case.options
    )
    database.dispose()
    token = create_key(settings.resolved_database_url, "predict", deployment="scored")
    spec = parse_spec("deployments:\n  scored:\n    model: model:1\n")
    with TestClient(app_for(spec, settings), headers=bearer(token)) as client:
        yield case, client


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _instances(frame: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): _plain(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def _expected(case: Case) -> np.ndarray:
    return np.asarray(case.expected, dtype=np.float64)


def test_decide_equals_the_library(served: tuple[Case, TestClient]) -> None:
    case, client = served
    frame = case.frame.head(40)

    response = client.post("/v1/deployments/scored/decide", json={"instances": _instances(frame)})

    assert response.status_code == 200, response.text
    predictions = [d["prediction"] for d in response.json()["decisions"]]
    expected = _expected(case)[: len(frame)]
    if case.task == "regression":
        got = np.array([p["value"] for p in predictions])
    else:
        keys = [str(c) for c in case.classes]
        got = np.array([[p["probabilities"][k] for k in keys] for p in predictions])
    np.testing.assert_allclose(got, expected, rtol=case.rtol, atol=1e-9)


def test_oip_infer_equals_the_library(served: tuple[Case, TestClient]) -> None:
    case, client = served
    frame = case.frame.head(40)
    metadata = client.get("/v2/models/scored").json()
    inputs = []
    for spec in metadata["inputs"]:
        values = [_plain(v) for v in frame[spec["name"]].tolist()]
        inputs.append(
            {
                "name": spec["name"],
                "datatype": spec["datatype"],
                "shape": [len(frame)],
                "data": values,
            }
        )

    response = client.post("/v2/models/scored/infer", json={"inputs": inputs})

    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    expected = _expected(case)[: len(frame)]
    if case.task == "regression":
        got = np.array(outputs["prediction"]["data"], dtype=np.float64)
    else:
        got = np.array(outputs["probabilities"]["data"], dtype=np.float64).reshape(expected.shape)
    np.testing.assert_allclose(got, expected, rtol=case.rtol, atol=1e-9)
