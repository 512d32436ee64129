"""What the queue hands to reviewers and dashboards: task summaries, task views, stats.

All three are plain frozen dataclasses with a JSON-ready `to_dict`, so the API, the CLI and
the console show the same fields. A view never carries the subject key or raw personal
data: decision inputs are stored redacted already, and are shown as stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bastion.review.feedback import Feedback
from bastion.review.tasks import CLAIMED, RESOLVED, STATUSES, is_overdue, status_of
from bastion.store.tables import DecisionRow, ReviewTaskRow


@dataclass(frozen=True)
class TaskSummary:
    """One task as a queue listing shows it, with its status and age as of `now`."""

    task_id: str
    decision_id: str
    deployment: str
    status: str
    priority: float
    reason: str
    sampling_probability: float
    model_outcome: str | None
    created_at: datetime
    due_at: datetime
    age_seconds: float
    overdue: bool
    escalation_level: int
    claimed_by: str | None
    lease_expires_at: datetime | None
    resolved_by: str | None
    resolved_at: datetime | None
    verdict: str | None

    @classmethod
    def from_row(cls, row: ReviewTaskRow, now: datetime) -> TaskSummary:
        status = status_of(row, now)
        end = row.resolved_at if row.status == RESOLVED and row.resolved_at else now
        claimed = status == CLAIMED
        return cls(
            task_id=row.id,
            decision_id=row.decision_id,
            deployment=row.deployment,
            status=status,
            priority=row.priority,
            reason=row.reason,
            sampling_probability=row.sampling_probability,
            model_outcome=row.model_outcome,
            created_at=row.created_at,
            due_at=row.due_at,
            age_seconds=max(0.0, (end - row.created_at).total_seconds()),
            overdue=is_overdue(row, now),
            escalation_level=row.escalation_level,
            # a lapsed lease is nobody's any more
            claimed_by=row.claimed_by if claimed else None,
            lease_expires_at=row.lease_expires_at if claimed else None,
            resolved_by=row.resolved_by,
            resolved_at=row.resolved_at,
            verdict=row.verdict,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "decision_id": self.decision_id,
            "deployment": self.deployment,
            "status": self.status,
            "priority": self.priority,
            "reason": self.reason,
            "sampling_probability": self.sampling_probability,
            "model_outcome": self.model_outcome,
            "created_at": self.created_at.isoformat(),
            "due_at": self.due_at.isoformat(),
            "age_seconds": round(self.age_seconds, 3),
            "overdue": self.overdue,
            "escalation_level": self.escalation_level,
            "claimed_by": self.claimed_by,
            "lease_expires_at": _iso(self.lease_expires_at),
            "resolved_by": self.resolved_by,
            "resolved_at": _iso(self.resolved_at),
            "verdict": self.verdict,
        }


def decision_block(row: DecisionRow) -> dict[str, Any]:
    """What a reviewer sees of the decision: redacted inputs, prediction, outcome, policy
    (rule hits, band, reason), guard findings and the explanation when one was stored."""
    return {
        "decision_id": row.id,
        "created_at": row.created_at.isoformat(),
        "model": {"name": row.model_name, "version": row.model_version},
        "inputs": row.inputs,
        "prediction": row.outputs,
        "outcome": row.outcome,
        "policy": row.policy,
        "explanation": row.explanation,
        "guard": row.guard,
    }


@dataclass(frozen=True)
class TaskView:
    """A task with everything needed to decide it: notes, the decision, the verdicts allowed
    and the feedback already recorded for the decision."""

    task: TaskSummary
    notes: str | None
    #: None only if the decision was erased or purged after the task was read
    decision: dict[str, Any] | None
    verdicts: list[str]
    feedback: list[Feedback] = field(default_factory=list)

    @property
    def task_id(self) -> str:
        return self.task.task_id

    @property
    def status(self) -> str:
        return self.task.status

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.task.to_dict(),
            "notes": self.notes,
            "verdicts": self.verdicts,
            "decision": self.decision,
            "feedback": [
                {k: v for k, v in f.to_dict().items() if k != "subject_key"} for f in self.feedback
            ],
        }


@dataclass(frozen=True)
class QueueStats:
    """The queue of one deployment (or of all, `deployment` None) as of one moment.

    `depth` counts unresolved tasks (open, claimed or escalated), `oldest_age_seconds` the
    age of the oldest of them (0 when none), `overdue` those past their due time.
    """

    deployment: str | None
    depth: int = 0
    oldest_age_seconds: float = 0.0
    overdue: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    @classmethod
    def combined(cls, parts: Iterable[QueueStats]) -> QueueStats:
        """The stats of several deployments as one queue (`deployment` None)."""
        total = cls(None)
        for part in parts:
            total = cls(
                None,
                depth=total.depth + part.depth,
                oldest_age_seconds=max(total.oldest_age_seconds, part.oldest_age_seconds),
                overdue=total.overdue + part.overdue,
                by_status={s: total.by_status[s] + part.by_status.get(s, 0) for s in STATUSES},
            )
        return total

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "depth": self.depth,
            "oldest_age_seconds": round(self.oldest_age_seconds, 3),
            "overdue": self.overdue,
            "by_status": dict(self.by_status),
        }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
