"""Review cases for tests: a movable clock, a spec with review settings, and decisions
routed to review inserted as the request path inserts them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bastion.review import new_task_values
from bastion.serving.ids import uuid7
from bastion.spec import Spec, parse_spec
from bastion.store import Database
from bastion.store.tables import DecisionRow, ReviewTaskRow

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

SPEC_TEXT = """
deployments:
  credit:
    model: credit:1
    policy:
      bands: {approve_below: 0.2, decline_at_or_above: 0.6}
      review:
        sla_minutes: 60
        lease_minutes: 10
        verdicts: {approve: 0, decline: 1, refer: "refer"}
  fraud:
    model: fraud:1
"""


class MovableClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass(frozen=True)
class Case:
    decision_id: str
    task_id: str


def review_spec() -> Spec:
    return parse_spec(SPEC_TEXT)


def add_case(
    database: Database,
    *,
    deployment: str = "credit",
    priority: float = 0.5,
    created_at: datetime = NOW,
    reason: str = "band",
    sampling_probability: float = 1.0,
    model_outcome: str | None = "review",
    subject_key: str | None = None,
    sla_minutes: float = 60,
    explanation: dict[str, Any] | None = None,
) -> Case:
    """A decision routed to review and its task, inserted together as the request path does."""
    decision_id = uuid7()
    values = new_task_values(
        decision_id=decision_id,
        deployment=deployment,
        subject_key=subject_key,
        created_at=created_at,
        priority=priority,
        reason=reason,
        sampling_probability=sampling_probability,
        model_outcome=model_outcome,
        sla_minutes=sla_minutes,
    )
    with database.transaction() as session:
        session.add(
            DecisionRow(
                id=decision_id,
                created_at=created_at,
                deployment=deployment,
                model_name=deployment,
                model_version=3,
                subject_key=subject_key,
                inputs={"income": 52000.0, "email": "<EMAIL>"},
                outputs={"label": 1, "score": 0.42},
                outcome="review",
                latency_ms=1.5,
                guard={"findings": []},
                policy={"source": "band", "band": "review", "reason": "BAND_REVIEW"},
                explanation=explanation,
            )
        )
        session.flush()
        session.add(ReviewTaskRow(**values))
    return Case(decision_id, values["id"])
