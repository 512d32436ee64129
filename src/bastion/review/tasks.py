"""The `review_tasks` repository: new task rows, the claim query, filters and counts.

Functions build queries inside the caller's session and never commit; `ReviewQueue` owns
the transactions.

A claim is a lease. A claimed task whose lease has lapsed is not written back to ``open``
by any background job: every query here treats it as open (or escalated) at read time, so
the queue is right the moment a lease expires, on every replica, without a sweeper.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, case, delete, false, func, or_, select, text
from sqlalchemy.orm import Session

from bastion.errors import InvalidInput
from bastion.serving.ids import uuid7
from bastion.store.tables import ReviewTaskRow

OPEN = "open"
CLAIMED = "claimed"
RESOLVED = "resolved"
ESCALATED = "escalated"
#: every status a task can be listed under (a lapsed claim lists as open or escalated)
STATUSES = (OPEN, CLAIMED, ESCALATED, RESOLVED)
#: statuses of tasks still waiting for a verdict (named, not negated: the index can use them)
UNRESOLVED = (OPEN, CLAIMED, ESCALATED)
#: why a case was routed to review (the `reason` column)
REASONS = ("band", "rule", "fallback", "exploration")


def new_task_values(
    *,
    decision_id: str,
    deployment: str,
    subject_key: str | None,
    created_at: datetime,
    priority: float,
    reason: str,
    sampling_probability: float,
    model_outcome: str | None,
    sla_minutes: float,
) -> dict[str, Any]:
    """The column values of one new ``review_tasks`` row, to insert with its decision.

    The request path inserts these in the same transaction as the decision records, so a
    decision routed to review never exists without its task. Raises `ValueError` for values
    the policy engine should never produce (they are programming errors, not user input).
    """
    if reason not in REASONS:
        raise ValueError(f"reason must be one of {', '.join(REASONS)}, got {reason!r}")
    if not 0 < sampling_probability <= 1:
        raise ValueError(f"sampling_probability must be in (0, 1], got {sampling_probability}")
    if sla_minutes <= 0:
        raise ValueError(f"sla_minutes must be > 0, got {sla_minutes}")
    if created_at.tzinfo is None:
        raise ValueError("created_at must be timezone-aware")
    return {
        "id": uuid7(),
        "decision_id": decision_id,
        "deployment": deployment,
        "subject_key": subject_key,
        "created_at": created_at,
        "due_at": created_at + timedelta(minutes=sla_minutes),
        "priority": float(priority),
        "reason": reason,
        "sampling_probability": float(sampling_probability),
        "model_outcome": model_outcome,
        "status": OPEN,
        "escalation_level": 0,
        "claimed_by": None,
        "lease_expires_at": None,
        "resolved_by": None,
        "resolved_at": None,
        "verdict": None,
        "notes": None,
    }


# -- status, as of `now` ---------------------------------------------------------------------


def _lapsed(now: datetime) -> ColumnElement[bool]:
    return and_(ReviewTaskRow.status == CLAIMED, ReviewTaskRow.lease_expires_at <= now)


def claimable(now: datetime) -> ColumnElement[bool]:
    """Open or escalated, or claimed with a lapsed lease.

    Written as ``status IN (unresolved) AND ...`` so the status index narrows the scan
    first: resolved tasks, the long history, are never read.
    """
    return and_(
        ReviewTaskRow.status.in_(UNRESOLVED),
        or_(ReviewTaskRow.status != CLAIMED, ReviewTaskRow.lease_expires_at <= now),
    )


def has_status(status: str, now: datetime) -> ColumnElement[bool]:
    """Tasks whose status as of `now` is `status` (a lapsed claim counts as open/escalated)."""
    if status == OPEN:
        return or_(
            ReviewTaskRow.status == OPEN, and_(_lapsed(now), ReviewTaskRow.escalation_level == 0)
        )
    if status == ESCALATED:
        return or_(
            ReviewTaskRow.status == ESCALATED,
            and_(_lapsed(now), ReviewTaskRow.escalation_level > 0),
        )
    if status == CLAIMED:
        return and_(ReviewTaskRow.status == CLAIMED, ReviewTaskRow.lease_expires_at > now)
    if status == RESOLVED:
        return ReviewTaskRow.status == RESOLVED
    return false()


def status_of(row: ReviewTaskRow, now: datetime) -> str:
    """The row's status as of `now`: a lapsed claim is open (or escalated) again."""
    if row.status == CLAIMED and not holds_live_lease(row, row.claimed_by, now):
        return ESCALATED if row.escalation_level > 0 else OPEN
    return row.status


def holds_live_lease(row: ReviewTaskRow, reviewer: str | None, now: datetime) -> bool:
    return (
        row.status == CLAIMED
        and reviewer is not None
        and row.claimed_by == reviewer
        and row.lease_expires_at is not None
        and row.lease_expires_at > now
    )


def is_overdue(row: ReviewTaskRow, now: datetime) -> bool:
    return row.status != RESOLVED and row.due_at < now


def check_status(status: str | None) -> None:
    if status is not None and status not in STATUSES:
        raise InvalidInput(
            f"status must be one of {', '.join(STATUSES)}, got {status!r}",
        )


# -- queries ---------------------------------------------------------------------------------


def take_write_lock(session: Session) -> None:
    """On SQLite, open the write transaction before anything is read.

    SQLite allows one writer. A transaction that reads first and writes later may find
    another writer committed in between and fail at once with "database is locked" (the
    busy timeout does not apply to upgrading a stale read). A write statement that changes
    nothing takes the write lock up front, waiting out the busy timeout, so the reads that
    follow see the latest commit and the claim that follows cannot race. PostgreSQL uses row
    locks instead (`FOR UPDATE [SKIP LOCKED]`).
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("UPDATE review_tasks SET id = id WHERE 0 = 1"))


def next_claimable(session: Session, deployment: str | None, now: datetime) -> ReviewTaskRow | None:
    """The task to hand out next, locked: highest priority first, then oldest.

    On PostgreSQL the row is locked ``FOR UPDATE SKIP LOCKED``, so concurrent reviewers each
    get a different task instead of waiting on, or both taking, the same one.
    """
    query = (
        select(ReviewTaskRow)
        .where(claimable(now))
        .order_by(ReviewTaskRow.priority.desc(), ReviewTaskRow.created_at, ReviewTaskRow.id)
        .limit(1)
        .with_for_update(skip_locked=True)
    )
    if deployment is not None:
        query = query.where(ReviewTaskRow.deployment == deployment)
    return session.scalars(query).first()


def get_locked(session: Session, task_id: str) -> ReviewTaskRow | None:
    """One task, locked until the transaction ends (waits for a concurrent change)."""
    return session.get(ReviewTaskRow, task_id, with_for_update=True)


def list_tasks(
    session: Session,
    *,
    deployment: str | None,
    status: str | None,
    overdue: bool,
    limit: int,
    now: datetime,
) -> Sequence[ReviewTaskRow]:
    """Tasks in queue order; `status` None means every unresolved task (the queue)."""
    query = select(ReviewTaskRow)
    if deployment is not None:
        query = query.where(ReviewTaskRow.deployment == deployment)
    if status is None:
        query = query.where(ReviewTaskRow.status.in_(UNRESOLVED))
    else:
        query = query.where(has_status(status, now))
    if overdue:
        query = query.where(ReviewTaskRow.status.in_(UNRESOLVED), ReviewTaskRow.due_at < now)
    if status == RESOLVED:
        query = query.order_by(ReviewTaskRow.resolved_at.desc(), ReviewTaskRow.id)
    else:
        query = query.order_by(
            ReviewTaskRow.priority.desc(), ReviewTaskRow.created_at, ReviewTaskRow.id
        )
    return session.scalars(query.limit(limit)).all()


def status_counts(
    session: Session, now: datetime, *, deployment: str | None = None, resolved: bool = True
) -> list[tuple[str, str, bool, int, datetime | None]]:
    """Per deployment, status (as of `now`) and overdue flag: task count and oldest creation.

    Unresolved tasks are grouped in one query that reads only them (the status index);
    resolved ones, the history that grows forever, are only counted, from the index alone,
    and only if `resolved` (frequent refreshes leave them out). The result is bounded by
    deployments times statuses.
    """
    lapsed = _lapsed(now)
    effective = case(
        (and_(lapsed, ReviewTaskRow.escalation_level > 0), ESCALATED),
        (lapsed, OPEN),
        else_=ReviewTaskRow.status,
    ).label("status")
    overdue = case((ReviewTaskRow.due_at < now, 1), else_=0).label("overdue")
    unresolved = (
        select(
            ReviewTaskRow.deployment,
            effective,
            overdue,
            func.count().label("tasks"),
            func.min(ReviewTaskRow.created_at).label("oldest"),
        )
        .where(ReviewTaskRow.status.in_(UNRESOLVED))
        .group_by(ReviewTaskRow.deployment, effective, overdue)
    )
    done = (
        select(ReviewTaskRow.deployment, func.count().label("tasks"))
        .where(ReviewTaskRow.status == RESOLVED)
        .group_by(ReviewTaskRow.deployment)
    )
    if deployment is not None:
        unresolved = unresolved.where(ReviewTaskRow.deployment == deployment)
        done = done.where(ReviewTaskRow.deployment == deployment)
    counts = [
        (row.deployment, row.status, bool(row.overdue), int(row.tasks), row.oldest)
        for row in session.execute(unresolved)
    ]
    if resolved:
        counts += [
            (row.deployment, RESOLVED, False, int(row.tasks), None) for row in session.execute(done)
        ]
    return counts


def tasks_for_subjects(session: Session, keys: Sequence[str]) -> Sequence[ReviewTaskRow]:
    return session.scalars(
        select(ReviewTaskRow)
        .where(ReviewTaskRow.subject_key.in_(keys))
        .order_by(ReviewTaskRow.created_at, ReviewTaskRow.id)
    ).all()


def delete_tasks_for_subjects(session: Session, keys: Sequence[str]) -> int:
    result = session.execute(delete(ReviewTaskRow).where(ReviewTaskRow.subject_key.in_(keys)))
    return int(getattr(result, "rowcount", 0) or 0)


def task_record(row: ReviewTaskRow) -> dict[str, Any]:
    """Every column of a task, JSON-ready (subject exports)."""
    return {
        "task_id": row.id,
        "decision_id": row.decision_id,
        "deployment": row.deployment,
        "subject_key": row.subject_key,
        "created_at": row.created_at.isoformat(),
        "due_at": row.due_at.isoformat(),
        "priority": row.priority,
        "reason": row.reason,
        "sampling_probability": row.sampling_probability,
        "model_outcome": row.model_outcome,
        "status": row.status,
        "escalation_level": row.escalation_level,
        "claimed_by": row.claimed_by,
        "lease_expires_at": _iso(row.lease_expires_at),
        "resolved_by": row.resolved_by,
        "resolved_at": _iso(row.resolved_at),
        "verdict": row.verdict,
        "notes": row.notes,
    }


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
