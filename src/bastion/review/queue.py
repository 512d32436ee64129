"""`ReviewQueue`: the human review queue's life cycle over the `review_tasks` table.

A task is ``open`` when the request path creates it. A reviewer claims it (a lease of the
deployment's ``policy.review.lease_minutes``), then resolves it with one of the deployment's
verdicts, releases it back to the queue, or escalates it. A lease that lapses returns the
task to the queue by itself. Resolving writes the verdict's label as feedback (source
``review``) in the same transaction, so a verdict and its training label never part.

Every method is blocking (call it from a worker thread) and runs in its own transaction.
The methods that change a task lock it first: on PostgreSQL with row locks (the next task
``FOR UPDATE SKIP LOCKED``, so concurrent reviewers never receive the same task), on SQLite
by taking the single write lock before reading.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from bastion.errors import Conflict, FieldError, InvalidInput, NotFound
from bastion.monitor.metrics import ServingMetrics
from bastion.policy.config import ReviewConfig
from bastion.review import tasks
from bastion.review.feedback import add_feedback, feedback_for_decision
from bastion.review.tasks import CLAIMED, ESCALATED, OPEN, RESOLVED
from bastion.review.views import QueueStats, TaskSummary, TaskView, decision_block
from bastion.spec import Spec
from bastion.store import Database
from bastion.store.tables import DecisionRow, ReviewTaskRow

Clock = Callable[[], datetime]

MAX_LIMIT = 500
MAX_NOTES = 10_000
MAX_REVIEWER = 128
_DEFAULT_CONFIG = ReviewConfig()


def utcnow() -> datetime:
    return datetime.now(UTC)


class ReviewQueue:
    """List, claim, resolve, release and escalate review tasks; count the queue.

    `spec` gives each deployment's review settings (verdicts, lease length); a deployment
    without a ``policy.review`` section uses the defaults. `clock` is injected so tests can
    let leases lapse and tasks fall overdue.
    """

    def __init__(
        self, database: Database, spec: Spec, metrics: ServingMetrics, clock: Clock = utcnow
    ) -> None:
        self.database = database
        self.spec = spec
        self.metrics = metrics
        self.clock = clock

    def config(self, deployment: str) -> ReviewConfig:
        spec = self.spec.deployments.get(deployment)
        if spec is None or spec.policy is None:
            return _DEFAULT_CONFIG
        return spec.policy.review

    # -- reading -----------------------------------------------------------------------------

    def list(
        self,
        deployment: str | None = None,
        status: str | None = None,
        limit: int = 50,
        overdue: bool = False,
    ) -> builtins.list[TaskSummary]:
        """Tasks in queue order (highest priority, then oldest); by default every unresolved
        task. `status` filters by status as of now (a lapsed claim is open again)."""
        tasks.check_status(status)
        if not 1 <= limit <= MAX_LIMIT:
            raise InvalidInput(f"limit must be 1 to {MAX_LIMIT}, got {limit}")
        now = self.clock()
        with self.database.transaction() as session:
            rows = tasks.list_tasks(
                session,
                deployment=deployment,
                status=status,
                overdue=overdue,
                limit=limit,
                now=now,
            )
            return [TaskSummary.from_row(row, now) for row in rows]

    def get(self, task_id: str) -> TaskView:
        now = self.clock()
        with self.database.transaction() as session:
            row = session.get(ReviewTaskRow, task_id)
            if row is None:
                raise _not_found(task_id)
            return self._view(session, row, now)

    def stats(self, deployment: str | None = None) -> QueueStats:
        """Depth, oldest unresolved age, overdue count and counts by status."""
        by_deployment = self.stats_by_deployment(deployment)
        if deployment is not None:
            return by_deployment.get(deployment, QueueStats(deployment))
        return QueueStats.combined(by_deployment.values())

    def stats_by_deployment(
        self, deployment: str | None = None, *, resolved: bool = True
    ) -> dict[str, QueueStats]:
        """`stats` of every deployment that has tasks (or of one), in one query.

        `resolved=False` skips counting resolved tasks (their count then reads 0), which
        keeps frequent refreshes cheap however long the history grows.
        """
        now = self.clock()
        with self.database.transaction() as session:
            counts = tasks.status_counts(session, now, deployment=deployment, resolved=resolved)
        out: dict[str, QueueStats] = {}
        for name, status, overdue, count, oldest in counts:
            current = out.get(name, QueueStats(name))
            unresolved = status != RESOLVED
            age = (now - oldest).total_seconds() if unresolved and oldest is not None else 0.0
            by_status = dict(current.by_status)
            by_status[status] = by_status.get(status, 0) + count
            out[name] = QueueStats(
                name,
                depth=current.depth + (count if unresolved else 0),
                oldest_age_seconds=max(current.oldest_age_seconds, age),
                overdue=current.overdue + (count if overdue else 0),
                by_status=by_status,
            )
        return out

    # -- changing ----------------------------------------------------------------------------

    def claim_next(self, reviewer: str, deployment: str | None = None) -> TaskView | None:
        """Claim the most urgent claimable task (of `deployment`, or of any); None if none."""
        _check_reviewer(reviewer)
        now = self.clock()
        with self.database.transaction() as session:
            tasks.take_write_lock(session)
            row = tasks.next_claimable(session, deployment, now)
            if row is None:
                return None
            self._take(row, reviewer, now)
            session.flush()
            return self._view(session, row, now)

    def claim(self, task_id: str, reviewer: str) -> TaskView:
        """Claim one task (renewing the lease if the caller holds it already).

        Conflict if it is resolved or another reviewer holds a live lease on it.
        """
        _check_reviewer(reviewer)
        now = self.clock()
        with self.database.transaction() as session:
            row = self._locked(session, task_id)
            if row.status == RESOLVED:
                raise _already_resolved(row)
            if row.status == CLAIMED and row.claimed_by != reviewer and _live(row, now):
                raise Conflict(
                    f"review task {task_id} is claimed by {row.claimed_by} until "
                    f"{_when(row.lease_expires_at)}; claim another task or wait for the lease "
                    "to lapse"
                )
            self._take(row, reviewer, now)
            session.flush()
            return self._view(session, row, now)

    def resolve(
        self, task_id: str, reviewer: str, verdict: str, notes: str | None = None
    ) -> TaskView:
        """Settle a task the caller holds with a verdict, and store its label as feedback."""
        _check_reviewer(reviewer)
        _check_notes(notes)
        now = self.clock()
        with self.database.transaction() as session:
            row = self._locked(session, task_id)
            config = self.config(row.deployment)
            if not isinstance(verdict, str) or verdict not in config.verdicts:
                allowed = ", ".join(config.verdicts)
                raise InvalidInput(
                    f"verdict must be one of {allowed} (deployment {row.deployment}), "
                    f"got {verdict!r}",
                    errors=[FieldError("verdict", "is not an allowed verdict", expected=allowed)],
                )
            self._require_claim(row, reviewer, now, "resolve")
            decision = session.get(DecisionRow, row.decision_id)
            if decision is None:
                raise Conflict(
                    f"decision {row.decision_id} of review task {task_id} no longer exists "
                    "(erased or past retention); its verdict cannot become feedback"
                )
            row.status = RESOLVED
            row.verdict = verdict
            row.resolved_by = reviewer
            row.resolved_at = now
            row.lease_expires_at = None
            row.notes = _append_note(row.notes, reviewer, notes)
            add_feedback(
                session,
                decision_id=decision.id,
                deployment=row.deployment,
                model_name=decision.model_name,
                model_version=decision.model_version,
                subject_key=decision.subject_key,
                label=config.verdicts[verdict],
                source="review",
                sampling_probability=row.sampling_probability,
                actor=reviewer,
                created_at=now,
            )
            session.flush()
            view = self._view(session, row, now)
        # Nothing to overturn when no band decided (a fallback sent the case to review).
        overturned = row.model_outcome is not None and verdict != row.model_outcome
        self.metrics.review_resolved.labels(row.deployment, str(overturned).lower()).inc()
        return view

    def release(self, task_id: str, reviewer: str) -> TaskView:
        """Give a claimed task back to the queue (escalated tasks stay escalated)."""
        _check_reviewer(reviewer)
        now = self.clock()
        with self.database.transaction() as session:
            row = self._locked(session, task_id)
            self._require_claim(row, reviewer, now, "release")
            row.status = ESCALATED if row.escalation_level > 0 else OPEN
            row.claimed_by = None
            row.lease_expires_at = None
            session.flush()
            return self._view(session, row, now)

    def escalate(self, task_id: str, reviewer: str, notes: str | None = None) -> TaskView:
        """Hand a claimed task to a more senior reviewer: one level up, back in the queue,
        with the caller's notes kept for whoever claims it next."""
        _check_reviewer(reviewer)
        _check_notes(notes)
        now = self.clock()
        with self.database.transaction() as session:
            row = self._locked(session, task_id)
            self._require_claim(row, reviewer, now, "escalate")
            row.status = ESCALATED
            row.escalation_level += 1
            row.claimed_by = None
            row.lease_expires_at = None
            row.notes = _append_note(row.notes, reviewer, notes)
            session.flush()
            return self._view(session, row, now)

    # -- helpers -----------------------------------------------------------------------------

    def _locked(self, session: Session, task_id: str) -> ReviewTaskRow:
        tasks.take_write_lock(session)
        row = tasks.get_locked(session, task_id)
        if row is None:
            raise _not_found(task_id)
        return row

    def _take(self, row: ReviewTaskRow, reviewer: str, now: datetime) -> None:
        lease = timedelta(minutes=self.config(row.deployment).lease_minutes)
        row.status = CLAIMED
        row.claimed_by = reviewer
        row.lease_expires_at = now + lease

    @staticmethod
    def _require_claim(row: ReviewTaskRow, reviewer: str, now: datetime, action: str) -> None:
        """The caller must hold the task. A lease of the caller's that lapsed while nobody
        else claimed the task still counts: the row is locked, so nobody can take it now."""
        if row.status == RESOLVED:
            raise _already_resolved(row)
        if row.status == CLAIMED and row.claimed_by == reviewer:
            return
        if row.status == CLAIMED and _live(row, now):
            raise Conflict(
                f"cannot {action} review task {row.id}: it is claimed by {row.claimed_by} "
                f"until {_when(row.lease_expires_at)}, not by {reviewer} (a claim lasts "
                "policy.review.lease_minutes; a lapsed one can be taken by another reviewer)"
            )
        raise Conflict(
            f"cannot {action} review task {row.id}: {reviewer} does not hold it; claim it first"
        )

    def _view(self, session: Session, row: ReviewTaskRow, now: datetime) -> TaskView:
        decision = session.get(DecisionRow, row.decision_id)
        return TaskView(
            task=TaskSummary.from_row(row, now),
            notes=row.notes,
            decision=None if decision is None else decision_block(decision),
            verdicts=list(self.config(row.deployment).verdicts),
            feedback=feedback_for_decision(session, row.decision_id),
        )


def _live(row: ReviewTaskRow, now: datetime) -> bool:
    return row.lease_expires_at is not None and row.lease_expires_at > now


def _when(value: datetime | None) -> str:
    return "?" if value is None else value.astimezone(UTC).isoformat(timespec="seconds")


def _not_found(task_id: str) -> NotFound:
    return NotFound(f"no review task with id {task_id!r}")


def _already_resolved(row: ReviewTaskRow) -> Conflict:
    return Conflict(
        f"review task {row.id} is already resolved ({row.verdict} by {row.resolved_by} at "
        f"{_when(row.resolved_at)})"
    )


def _check_reviewer(reviewer: Any) -> None:
    if not isinstance(reviewer, str) or not 1 <= len(reviewer) <= MAX_REVIEWER:
        raise InvalidInput(f"reviewer must be a name of 1 to {MAX_REVIEWER} characters")


def _check_notes(notes: Any) -> None:
    if notes is not None and (not isinstance(notes, str) or len(notes) > MAX_NOTES):
        raise InvalidInput(
            f"notes must be text of at most {MAX_NOTES} characters",
            errors=[FieldError("notes", f"must be a string of at most {MAX_NOTES} characters")],
        )


def _append_note(existing: str | None, reviewer: str, notes: str | None) -> str | None:
    """Notes accumulate, one ``reviewer: text`` line each, so an escalation's reasons stay
    in front of the senior reviewer and in the record."""
    if not notes:
        return existing
    line = f"{reviewer}: {notes}"
    return line if not existing else f"{existing}\n{line}"
