"""The `feedback` repository: late labels for decisions, whatever their source.

A reviewer's verdict is written here (source ``review``) in the transaction that resolves
the task; labels sent through the API (``api``) or loaded from files (``import``) arrive
through the same functions. Functions work in the caller's session and never commit.

``sampling_probability`` is the probability with which the labelled case was selected for
review. Weighting each review label by its inverse corrects later evaluation and training
for the selection bias of labelling mostly flagged cases (see docs/review.md).

**History, latest wins.** Labels are never overwritten: a decision may collect several (a
loan current at three months, in default at twelve; a corrected import). Readers take the
latest by ``created_at`` (for API and import labels, the time the outcome was *observed*;
for a review verdict, the time it was given), then by id. ``created_at`` therefore holds
the observation time, so re-importing an old file does not override a newer observation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, insert, select
from sqlalchemy.orm import Session

from bastion.store.tables import FeedbackRow

#: where a label came from
SOURCES = ("api", "import", "review")


@dataclass(frozen=True)
class Feedback:
    """One stored label for one decision."""

    id: int
    decision_id: str
    deployment: str
    model_name: str
    model_version: int
    subject_key: str | None
    label: Any
    source: str
    sampling_probability: float | None
    actor: str | None
    created_at: datetime

    @classmethod
    def from_row(cls, row: FeedbackRow) -> Feedback:
        return cls(
            id=row.id,
            decision_id=row.decision_id,
            deployment=row.deployment,
            model_name=row.model_name,
            model_version=row.model_version,
            subject_key=row.subject_key,
            label=row.label,
            source=row.source,
            sampling_probability=row.sampling_probability,
            actor=row.actor,
            created_at=row.created_at,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "decision_id": self.decision_id,
            "deployment": self.deployment,
            "model": {"name": self.model_name, "version": self.model_version},
            "subject_key": self.subject_key,
            "label": self.label,
            "source": self.source,
            "sampling_probability": self.sampling_probability,
            "actor": self.actor,
            "created_at": self.created_at.isoformat(),
        }


def _check(source: str, sampling_probability: float | None) -> None:
    if source not in SOURCES:
        raise ValueError(f"source must be one of {', '.join(SOURCES)}, got {source!r}")
    if sampling_probability is not None and not 0 < sampling_probability <= 1:
        raise ValueError(f"sampling_probability must be in (0, 1], got {sampling_probability}")


def add_feedback(
    session: Session,
    *,
    decision_id: str,
    deployment: str,
    model_name: str,
    model_version: int,
    subject_key: str | None,
    label: Any,
    source: str,
    sampling_probability: float | None,
    actor: str | None,
    created_at: datetime,
) -> Feedback:
    """Store one label; `source` must be one of `SOURCES`."""
    _check(source, sampling_probability)
    row = FeedbackRow(
        decision_id=decision_id,
        deployment=deployment,
        model_name=model_name,
        model_version=model_version,
        subject_key=subject_key,
        label=label,
        source=source,
        sampling_probability=sampling_probability,
        actor=actor,
        created_at=created_at,
    )
    session.add(row)
    session.flush()
    return Feedback.from_row(row)


def add_feedback_rows(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Store many labels in one statement (imports): each dict has `add_feedback`'s fields.

    A bulk insert keeps no ORM objects in the session, so a long import stays small in
    memory while it runs in one transaction.
    """
    for row in rows:
        _check(row["source"], row.get("sampling_probability"))
    if rows:
        session.execute(insert(FeedbackRow), list(rows))
    return len(rows)


def list_feedback(
    session: Session, deployment: str, *, limit: int = 50, decision_id: str | None = None
) -> list[Feedback]:
    """The deployment's labels, newest (by ``created_at``, then id) first."""
    query = select(FeedbackRow).where(FeedbackRow.deployment == deployment)
    if decision_id is not None:
        query = query.where(FeedbackRow.decision_id == decision_id)
    query = query.order_by(FeedbackRow.created_at.desc(), FeedbackRow.id.desc()).limit(limit)
    return [Feedback.from_row(row) for row in session.scalars(query)]


def feedback_for_decision(session: Session, decision_id: str) -> list[Feedback]:
    rows = session.scalars(
        select(FeedbackRow).where(FeedbackRow.decision_id == decision_id).order_by(FeedbackRow.id)
    )
    return [Feedback.from_row(row) for row in rows]


def feedback_for_subjects(session: Session, keys: Sequence[str]) -> list[Feedback]:
    rows = session.scalars(
        select(FeedbackRow).where(FeedbackRow.subject_key.in_(keys)).order_by(FeedbackRow.id)
    )
    return [Feedback.from_row(row) for row in rows]


def delete_feedback_for_subjects(session: Session, keys: Sequence[str]) -> int:
    result = session.execute(delete(FeedbackRow).where(FeedbackRow.subject_key.in_(keys)))
    return int(getattr(result, "rowcount", 0) or 0)
