"""`/v1/review`: the review queue over HTTP, with review keys, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from starlette.testclient import TestClient

from bastion.registry import ArtifactStore, Registry
from bastion.server.app import app_for
from bastion.server.openapi_schemas import REVIEW_TASK_VIEW
from bastion.settings import Settings
from bastion.spec import parse_spec
from bastion.store import Database
from tests.credentials import bearer, create_key
from tests.review.cases import Case, add_case
from tests.server.conftest import make_frame
from tests.support import problem_body

SPEC = """
deployments:
  credit:
    model: credit:1
    policy:
      # every score but exactly 1.0 lands in the review band: each decision becomes a task
      bands: {approve_below: 0.0, decline_at_or_above: 1.0}
      review:
        lease_minutes: 10
        verdicts: {approve: 0, decline: 1}
"""
MISSING = "01234567-89ab-7def-8123-456789abcdef"


@dataclass
class ReviewApi:
    client: TestClient
    database: Database
    ann: dict[str, str]
    bob: dict[str, str]
    ann_id: str
    predict: dict[str, str]
    admin: dict[str, str]

    def case(self, **kwargs: Any) -> Case:
        kwargs.setdefault("created_at", datetime.now(UTC))
        return add_case(self.database, **kwargs)


@pytest.fixture
def api(tmp_path: Path, database_url: str, artifacts: dict[str, Path]) -> Iterator[ReviewApi]:
    settings = Settings(
        home=tmp_path / ".bastion", database_url=database_url, secret_key="review-api-tests"
    )
    database = Database(database_url)
    database.migrate()
    registry = Registry(database, ArtifactStore(settings.artifacts_dir))
    registry.register("credit", artifacts["credit"], sample=make_frame(200, seed=3)[0])
    ann = create_key(database_url, "review")
    bob = create_key(database_url, "review")
    predict = create_key(database_url, "predict")
    admin = create_key(database_url, "admin")
    try:
        with TestClient(app_for(parse_spec(SPEC), settings)) as client:
            yield ReviewApi(
                client,
                database,
                bearer(ann),
                bearer(bob),
                ann.split("_")[1],
                bearer(predict),
                bearer(admin),
            )
    finally:
        database.dispose()


def test_a_reviewer_lists_claims_and_resolves_a_task(api: ReviewApi) -> None:
    low = api.case(priority=0.2)
    high = api.case(priority=0.9, sampling_probability=0.5)

    listed = api.client.get("/v1/review/tasks", headers=api.ann).json()["tasks"]
    claimed = api.client.post("/v1/review/tasks/claim", headers=api.ann)
    resolved = api.client.post(
        f"/v1/review/tasks/{high.task_id}/resolve",
        headers=api.ann,
        json={"verdict": "decline", "notes": "payslip does not match"},
    )

    assert [t["task_id"] for t in listed] == [high.task_id, low.task_id]
    assert claimed.status_code == 200
    assert claimed.json()["task_id"] == high.task_id
    assert claimed.json()["claimed_by"] == api.ann_id
    assert claimed.json()["decision"]["inputs"]["email"] == "<EMAIL>"
    assert resolved.status_code == 200, resolved.text
    body = resolved.json()
    assert (body["status"], body["verdict"], body["resolved_by"]) == (
        "resolved",
        "decline",
        api.ann_id,
    )
    assert [(f["label"], f["source"], f["sampling_probability"]) for f in body["feedback"]] == [
        (1, "review", 0.5)
    ]
    # what the API returns is what /openapi.json promises
    validator = jsonschema_rs.Draft202012Validator(REVIEW_TASK_VIEW)
    validator.validate(claimed.json())
    validator.validate(body)
    stats = api.client.get("/v1/review/stats", headers=api.ann).json()
    assert (stats["depth"], stats["by_status"]["resolved"]) == (1, 1)
    assert stats["deployments"]["credit"]["depth"] == 1


def test_a_decision_in_the_review_band_is_reviewed_into_feedback(api: ReviewApi) -> None:
    features = make_frame(1, seed=5)[0].astype({"region": str}).to_dict(orient="records")[0]
    decided = api.client.post(
        "/v1/deployments/credit/decide",
        headers=api.predict,
        json={"features": features, "subject_id": "jane@example.com"},
    )
    assert decided.status_code == 200, decided.text
    decision_id = decided.json()["decision_id"]

    claimed = api.client.post(
        "/v1/review/tasks/claim", headers=api.ann, json={"deployment": "credit"}
    ).json()
    # the band the policy would have chosen without a reviewer; the reviewer overturns it
    overturning = "approve" if claimed["model_outcome"] == "decline" else "decline"
    resolved = api.client.post(
        f"/v1/review/tasks/{claimed['task_id']}/resolve",
        headers=api.ann,
        json={"verdict": overturning},
    ).json()

    assert claimed["decision"]["decision_id"] == decision_id
    assert claimed["decision"]["prediction"] == decided.json()["prediction"]
    assert claimed["decision"]["policy"]["band"] == "review"
    assert claimed["reason"] == "band"
    assert claimed["model_outcome"] in ("approve", "decline")
    label = {"approve": 0, "decline": 1}[overturning]
    assert [(f["decision_id"], f["label"]) for f in resolved["feedback"]] == [(decision_id, label)]
    metrics = api.client.get("/metrics", headers=api.admin).text
    assert 'bastion_review_resolved_total{deployment="credit",overturned="true"} 1.0' in metrics


def test_claiming_from_an_empty_queue_is_404(api: ReviewApi) -> None:
    problem = problem_body(
        api.client.post("/v1/review/tasks/claim", headers=api.ann, json={"deployment": "credit"}),
        404,
    )

    assert problem["detail"] == "no review task is waiting for deployment credit"


def test_another_reviewers_live_lease_is_a_409(api: ReviewApi) -> None:
    case = api.case()
    assert api.client.post(f"/v1/review/tasks/{case.task_id}/claim", headers=api.ann).is_success

    claim = problem_body(
        api.client.post(f"/v1/review/tasks/{case.task_id}/claim", headers=api.bob), 409
    )
    resolve = problem_body(
        api.client.post(
            f"/v1/review/tasks/{case.task_id}/resolve", headers=api.bob, json={"verdict": "approve"}
        ),
        409,
    )

    assert f"claimed by {api.ann_id}" in claim["detail"]
    assert "not by" in resolve["detail"]


def test_an_unknown_verdict_is_422_naming_the_allowed_ones(api: ReviewApi) -> None:
    case = api.case()
    api.client.post(f"/v1/review/tasks/{case.task_id}/claim", headers=api.ann)

    problem = problem_body(
        api.client.post(
            f"/v1/review/tasks/{case.task_id}/resolve", headers=api.ann, json={"verdict": "maybe"}
        ),
        422,
    )

    assert "verdict must be one of approve, decline" in problem["detail"]
    assert problem["errors"][0]["field"] == "verdict"


def test_release_and_escalate_put_the_task_back(api: ReviewApi) -> None:
    case = api.case()
    url = f"/v1/review/tasks/{case.task_id}"
    api.client.post(f"{url}/claim", headers=api.ann)

    released = api.client.post(f"{url}/release", headers=api.ann).json()
    api.client.post(f"{url}/claim", headers=api.bob)
    escalated = api.client.post(
        f"{url}/escalate", headers=api.bob, json={"notes": "needs a senior"}
    ).json()
    shown = api.client.get(url, headers=api.ann).json()

    assert released["status"] == "open"
    assert (escalated["status"], escalated["escalation_level"]) == ("escalated", 1)
    assert shown["notes"].endswith("needs a senior")
    listed = api.client.get("/v1/review/tasks?status=escalated", headers=api.ann).json()
    assert [t["task_id"] for t in listed["tasks"]] == [case.task_id]


def test_overdue_tasks_are_listed_with_the_flag(api: ReviewApi) -> None:
    late = api.case(created_at=datetime.now(UTC) - timedelta(hours=2), sla_minutes=60)
    api.case(sla_minutes=60)

    listed = api.client.get("/v1/review/tasks?overdue=true&limit=10", headers=api.ann).json()
    stats = api.client.get("/v1/review/stats?deployment=credit", headers=api.ann).json()

    assert [(t["task_id"], t["overdue"]) for t in listed["tasks"]] == [(late.task_id, True)]
    assert (stats["depth"], stats["overdue"]) == (2, 1)


#: (route, body, the field the 422 names): bodies are checked before any queue work
BAD_BODIES: list[tuple[str, dict[str, Any], str]] = [
    ("resolve", {"verdict": "approve", "score": 1}, "score"),
    ("resolve", {"verdict": 1}, "verdict"),
    ("resolve", {"notes": "no verdict"}, "verdict"),
    ("escalate", {"notes": ["a", "list"]}, "notes"),
    ("claim", {"reviewer": "someone-else"}, "reviewer"),
]
#: (query string, the field the 422 names, if it names one)
BAD_QUERIES: list[tuple[str, str | None]] = [
    ("status=pending", None),
    ("overdue=maybe", "overdue"),
    ("limit=many", "limit"),
    ("limit=0", None),
    ("sort=age", "sort"),
]


def _fields(response: Any) -> list[str]:
    """The fields a 422 problem names."""
    return [e["field"] for e in problem_body(response, 422).get("errors", [])]


def test_bodies_are_checked_at_the_boundary(api: ReviewApi) -> None:
    case = api.case()
    url = f"/v1/review/tasks/{case.task_id}"
    api.client.post(f"{url}/claim", headers=api.ann)

    named = [
        _fields(api.client.post(f"{url}/{path}", headers=api.ann, json=body))
        for path, body, _ in BAD_BODIES
    ]

    assert named == [[field] for _, _, field in BAD_BODIES]
    assert api.client.get(url, headers=api.ann).json()["status"] == "claimed"


def test_list_queries_are_checked(api: ReviewApi) -> None:
    named = [
        _fields(api.client.get(f"/v1/review/tasks?{query}", headers=api.ann))
        for query, _ in BAD_QUERIES
    ]

    assert named == [[field] if field else [] for _, field in BAD_QUERIES]


def test_malformed_json_and_unknown_tasks(api: ReviewApi) -> None:
    bad_json = api.client.post(
        "/v1/review/tasks/claim",
        headers={**api.ann, "content-type": "application/json"},
        content=b"{not json",
    )
    not_a_uuid = api.client.get("/v1/review/tasks/not-a-task", headers=api.ann)
    missing = api.client.post(f"/v1/review/tasks/{MISSING}/claim", headers=api.ann)

    problem_body(bad_json, 400)
    problem_body(not_a_uuid, 404)
    assert problem_body(missing, 404)["detail"] == f"no review task with id {MISSING!r}"


def test_a_predict_key_may_not_work_the_queue(api: ReviewApi) -> None:
    problem = problem_body(api.client.get("/v1/review/tasks", headers=api.predict), 403)

    assert "work the review queue" in problem["detail"]
