"""Data-subject rights over the decision log: export, erasure and retention.

A subject is known only by its pseudonyms (one per key the pseudonymizer knows, so records
made before a key rotation are found too). Export and erasure cover the subject's decisions,
their review tasks and their feedback labels (all keyed by the same pseudonym) in the
database, and the decisions waiting in the local spool; erasure records an audit event naming
the pseudonym, never the raw id. Retention deletes decisions older than a deployment's
`retention_days`, with their review tasks (a task is a view of its decision); feedback labels
stay, as training data with no inputs of their own.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import delete, func, select

from bastion.guard.pseudonym import Pseudonymizer
from bastion.review.feedback import delete_feedback_for_subjects, feedback_for_subjects
from bastion.review.tasks import delete_tasks_for_subjects, task_record, tasks_for_subjects
from bastion.serving.decision_log import row_to_record
from bastion.store import Database
from bastion.store.audit import AuditLog
from bastion.store.tables import DecisionRow, ReviewTaskRow

Clock = Callable[[], datetime]
#: the key of a review-task line in a decision spool file (see `serving.decision_log`)
SPOOLED_TASK = "review_task"


@dataclass(frozen=True)
class ErasureReport:
    subject_key: str
    decisions: int
    spooled: int
    review_tasks: int = 0
    feedback: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "subject_key": self.subject_key,
            "decisions": self.decisions,
            "spooled": self.spooled,
            "review_tasks": self.review_tasks,
            "feedback": self.feedback,
        }


class SubjectService:
    """Find, export and erase everything stored about one subject."""

    def __init__(
        self, database: Database, pseudonymizer: Pseudonymizer, spool_dir: Path, clock: Clock
    ) -> None:
        self.database = database
        self.pseudonymizer = pseudonymizer
        self.spool_dir = spool_dir
        self.clock = clock

    def export(self, subject_id: str) -> dict[str, Any]:
        """Every stored decision, review task and feedback label of the subject, as JSON."""
        keys = self.pseudonymizer.pseudonymize_all(subject_id)
        with self.database.transaction() as session:
            rows = session.scalars(
                select(DecisionRow)
                .where(DecisionRow.subject_key.in_(keys))
                .order_by(DecisionRow.created_at)
            )
            decisions = [row_to_record(row) for row in rows]
            tasks = [task_record(row) for row in tasks_for_subjects(session, keys)]
            feedback = [f.to_dict() for f in feedback_for_subjects(session, keys)]
        spooled = [record for record in self._spooled_records() if _subject_of(record) in keys]
        return {
            "subject_key": keys[0],
            "decisions": decisions,
            "review_tasks": tasks,
            "feedback": feedback,
            "spooled_decisions": [r for r in spooled if SPOOLED_TASK not in r],
            "spooled_review_tasks": [r[SPOOLED_TASK] for r in spooled if SPOOLED_TASK in r],
        }

    def erase(self, subject_id: str, *, actor: str) -> ErasureReport:
        """Remove the subject from the spool and the database; audit it without the raw id.

        The spool goes first, so a replay racing with the erasure cannot bring records back
        after the database delete.
        """
        keys = self.pseudonymizer.pseudonymize_all(subject_id)
        spooled, spooled_tasks = self._erase_from_spool(set(keys))
        now = self.clock()
        with self.database.transaction() as session:
            tasks = delete_tasks_for_subjects(session, keys) + spooled_tasks
            feedback = delete_feedback_for_subjects(session, keys)
            result = session.execute(delete(DecisionRow).where(DecisionRow.subject_key.in_(keys)))
            deleted = int(getattr(result, "rowcount", 0) or 0)
            AuditLog.append(
                session,
                actor=actor,
                action="subject.erased",
                target=keys[0],
                details={
                    "decisions": deleted,
                    "spooled": spooled,
                    "review_tasks": tasks,
                    "feedback": feedback,
                },
                at=now,
            )
        return ErasureReport(keys[0], deleted, spooled, tasks, feedback)

    def purge_expired(self, retention_days: dict[str, int]) -> dict[str, int]:
        """Delete decisions older than each deployment's retention; returns counts per deployment."""
        now = self.clock()
        removed: dict[str, int] = {}
        with self.database.transaction() as session:
            for deployment, days in retention_days.items():
                cutoff = now - timedelta(days=days)
                expired = select(DecisionRow.id).where(
                    DecisionRow.deployment == deployment, DecisionRow.created_at < cutoff
                )
                session.execute(delete(ReviewTaskRow).where(ReviewTaskRow.decision_id.in_(expired)))
                result = session.execute(
                    delete(DecisionRow).where(
                        DecisionRow.deployment == deployment, DecisionRow.created_at < cutoff
                    )
                )
                removed[deployment] = int(getattr(result, "rowcount", 0) or 0)
        return removed

    def count(self, subject_id: str) -> int:
        keys = self.pseudonymizer.pseudonymize_all(subject_id)
        with self.database.transaction() as session:
            total = session.scalar(
                select(func.count())
                .select_from(DecisionRow)
                .where(DecisionRow.subject_key.in_(keys))
            )
            return int(total or 0)

    def _spool_files(self) -> list[Path]:
        if not self.spool_dir.exists():
            return []
        return sorted(self.spool_dir.glob("decisions-*.jsonl"))

    def _spooled_records(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for path in self._spool_files():
            records.extend(orjson.loads(line) for line in path.read_bytes().splitlines() if line)
        return records

    def _erase_from_spool(self, keys: set[str]) -> tuple[int, int]:
        """Drop the subject's spooled lines; returns (decisions, review tasks) removed."""
        removed = removed_tasks = 0
        for path in self._spool_files():
            lines = [line for line in path.read_bytes().splitlines() if line]
            kept = []
            for line in lines:
                item = orjson.loads(line)
                if _subject_of(item) not in keys:
                    kept.append(line)
                elif SPOOLED_TASK in item:
                    removed_tasks += 1
                else:
                    removed += 1
            if len(kept) == len(lines):
                continue
            temporary = path.with_suffix(".erasing")
            with temporary.open("wb") as handle:
                handle.writelines(line + b"\n" for line in kept)
                handle.flush()
                os.fsync(handle.fileno())
            if kept:
                temporary.replace(path)
            else:
                temporary.unlink()
                path.unlink()
        return removed, removed_tasks


def _subject_of(item: dict[str, Any]) -> str | None:
    """The subject key of a spooled line: a decision record, or a ``review_task`` line."""
    task = item.get(SPOOLED_TASK)
    subject: str | None = (task if isinstance(task, dict) else item).get("subject_key")
    return subject
