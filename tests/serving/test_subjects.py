"""Export, erasure and retention of a subject's decisions, review tasks and feedback, on
SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import select, text

from bastion.guard.pseudonym import Pseudonymizer
from bastion.monitor.metrics import ServingMetrics
from bastion.review import ReviewQueue, new_task_values
from bastion.serving.decision_log import DecisionLog, Record
from bastion.serving.retention import RetentionJob
from bastion.serving.subjects import SPOOLED_TASK, SubjectService
from bastion.store import Database
from bastion.store.audit import AuditLog
from bastion.store.tables import DecisionRow, FeedbackRow, ReviewTaskRow
from tests.review.cases import Case, add_case, review_spec

OLD_KEY = b"an-old-key-that-was-rotated-out"
NEW_KEY = b"the-current-pseudonymization-key"
UNREACHABLE = "postgresql+psycopg://root@127.0.0.1:1/test?connect_timeout=1"
NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _record(subject_key: str | None, created_at: datetime = NOW) -> Record:
    return {
        "id": str(uuid.uuid4()),
        "created_at": created_at,
        "deployment": "credit",
        "model_name": "credit",
        "model_version": 1,
        "subject_key": subject_key,
        "inputs": {"income": 1.0},
        "outputs": {"score": 0.5},
        "outcome": 1,
        "latency_ms": 1.0,
    }


def _write(database: Database, spool: Path, records: list[Record]) -> None:
    async def scenario() -> None:
        log = DecisionLog(database, spool)
        await log.start()
        try:
            await log.record(records)
        finally:
            await log.close()

    asyncio.run(scenario())


def _service(database: Database, spool: Path) -> SubjectService:
    pseudonymizer = Pseudonymizer(NEW_KEY, previous=[OLD_KEY])
    return SubjectService(database, pseudonymizer, spool, clock=lambda: NOW)


def test_erase_removes_every_record_of_the_subject_and_only_those(
    database: Database, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    alice_now = Pseudonymizer(NEW_KEY).pseudonymize("alice@example.com")
    alice_before_rotation = Pseudonymizer(OLD_KEY).pseudonymize("alice@example.com")
    bob = Pseudonymizer(NEW_KEY).pseudonymize("bob@example.com")
    _write(database, spool, [_record(alice_now), _record(alice_before_rotation), _record(bob)])
    _write(Database(UNREACHABLE), spool, [_record(alice_now), _record(bob)])
    service = _service(database, spool)

    report = service.erase("alice@example.com", actor="dpo")

    assert (report.decisions, report.spooled) == (2, 1)
    assert service.count("alice@example.com") == 0
    assert service.export("alice@example.com")["spooled_decisions"] == []
    assert service.count("bob@example.com") == 1
    assert len(service.export("bob@example.com")["spooled_decisions"]) == 1


def test_erase_is_audited_without_the_raw_subject_id(database: Database, tmp_path: Path) -> None:
    service = _service(database, tmp_path / "spool")

    service.erase("alice@example.com", actor="dpo")

    with database.transaction() as session:
        events = AuditLog.list(session, action="subject.erased")
        dumped = session.execute(text("SELECT * FROM audit_events")).all()
    assert [e.actor for e in events] == ["dpo"]
    assert events[0].target == Pseudonymizer(NEW_KEY).pseudonymize("alice@example.com")
    assert "alice" not in repr(dumped)


def test_export_returns_the_subjects_decisions(database: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    alice = Pseudonymizer(NEW_KEY).pseudonymize("alice@example.com")
    records = [_record(alice), _record(alice), _record(None)]
    _write(database, spool, records)

    exported = _service(database, spool).export("alice@example.com")

    assert exported["subject_key"] == alice
    assert sorted(d["decision_id"] for d in exported["decisions"]) == sorted(
        r["id"] for r in records[:2]
    )


def test_purge_expired_keeps_recent_decisions(database: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    old = _record(None, created_at=NOW - timedelta(days=40))
    recent = _record(None, created_at=NOW - timedelta(days=5))
    other_deployment = dict(_record(None, created_at=NOW - timedelta(days=400)), deployment="fraud")
    _write(database, spool, [old, recent, other_deployment])

    removed = _service(database, spool).purge_expired({"credit": 30})

    assert removed == {"credit": 1}
    with database.transaction() as session:
        remaining = set(session.scalars(select(DecisionRow.id)))
    assert remaining == {recent["id"], other_deployment["id"]}


def test_retention_job_purges_in_the_background_and_stops(
    database: Database, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    old = _record(None, created_at=NOW - timedelta(days=40))
    _write(database, spool, [old])
    job = RetentionJob(_service(database, spool), {"credit": 30}, interval_seconds=0.05)

    async def scenario() -> None:
        await job.start()
        await asyncio.sleep(0.3)
        await job.stop()

    asyncio.run(scenario())

    assert job.runs >= 2
    with database.transaction() as session:
        assert list(session.scalars(select(DecisionRow.id))) == []


def _reviewed(database: Database, subject_key: str, *, created_at: datetime = NOW) -> Case:
    """A decision of the subject sent to review and resolved: a task and a feedback label."""
    case = add_case(database, subject_key=subject_key, created_at=created_at)
    queue = ReviewQueue(database, review_spec(), ServingMetrics(), lambda: created_at)
    queue.claim(case.task_id, "ann")
    queue.resolve(case.task_id, "ann", "decline", "checked")
    return case


def test_export_includes_the_subjects_review_tasks_and_feedback(
    database: Database, tmp_path: Path
) -> None:
    alice = Pseudonymizer(NEW_KEY).pseudonymize("alice@example.com")
    alice_before_rotation = Pseudonymizer(OLD_KEY).pseudonymize("alice@example.com")
    mine = [_reviewed(database, alice), add_case(database, subject_key=alice_before_rotation)]
    _reviewed(database, Pseudonymizer(NEW_KEY).pseudonymize("bob@example.com"))

    exported = _service(database, tmp_path / "spool").export("alice@example.com")

    assert sorted(t["task_id"] for t in exported["review_tasks"]) == sorted(c.task_id for c in mine)
    assert sorted(d["decision_id"] for d in exported["decisions"]) == sorted(
        c.decision_id for c in mine
    )
    (label,) = exported["feedback"]
    assert (label["decision_id"], label["label"], label["source"]) == (
        mine[0].decision_id,
        1,
        "review",
    )
    assert exported["review_tasks"][0]["notes"] == "ann: checked"


def test_erase_removes_the_subjects_review_tasks_and_feedback_only(
    database: Database, tmp_path: Path
) -> None:
    alice = Pseudonymizer(OLD_KEY).pseudonymize("alice@example.com")
    _reviewed(database, alice)
    add_case(database, subject_key=alice)
    bob = _reviewed(database, Pseudonymizer(NEW_KEY).pseudonymize("bob@example.com"))
    service = _service(database, tmp_path / "spool")

    report = service.erase("alice@example.com", actor="dpo")

    assert (report.decisions, report.review_tasks, report.feedback) == (2, 2, 1)
    assert report.as_dict()["review_tasks"] == 2
    with database.transaction() as session:
        assert list(session.scalars(select(ReviewTaskRow.id))) == [bob.task_id]
        assert list(session.scalars(select(FeedbackRow.decision_id))) == [bob.decision_id]
        (event,) = AuditLog.list(session, action="subject.erased")
    assert (event.details["review_tasks"], event.details["feedback"]) == (2, 1)
    assert service.export("alice@example.com")["review_tasks"] == []


def test_purge_expired_removes_the_review_tasks_of_purged_decisions(
    database: Database, tmp_path: Path
) -> None:
    old = _reviewed(database, "k:old", created_at=NOW - timedelta(days=40))
    recent = add_case(database, created_at=NOW - timedelta(days=5))

    _service(database, tmp_path / "spool").purge_expired({"credit": 30})

    with database.transaction() as session:
        assert list(session.scalars(select(ReviewTaskRow.id))) == [recent.task_id]
        # labels stay as training data; they hold no inputs of their own
        assert list(session.scalars(select(FeedbackRow.decision_id))) == [old.decision_id]


def _spool_with_tasks(spool: Path, records: list[Record]) -> None:
    """Decisions routed to review, spooled by the decision log with their review tasks
    while the database is unreachable."""
    tasks = [
        new_task_values(
            decision_id=record["id"],
            deployment="credit",
            subject_key=record["subject_key"],
            created_at=NOW,
            priority=0.5,
            reason="band",
            sampling_probability=1.0,
            model_outcome="decline",
            sla_minutes=60,
        )
        for record in records
    ]

    async def scenario() -> None:
        log = DecisionLog(Database(UNREACHABLE), spool)
        await log.start()
        try:
            await log.record(records, tasks)
        finally:
            await log.close()

    asyncio.run(scenario())
    assert any(SPOOLED_TASK.encode() in p.read_bytes() for p in spool.glob("*.jsonl"))


def test_export_and_erase_cover_spooled_review_tasks(database: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    alice = Pseudonymizer(NEW_KEY).pseudonymize("alice@example.com")
    bob = Pseudonymizer(NEW_KEY).pseudonymize("bob@example.com")
    records = [_record(alice), _record(bob)]
    _spool_with_tasks(spool, records)
    service = _service(database, spool)

    exported = service.export("alice@example.com")
    report = service.erase("alice@example.com", actor="dpo")

    assert [t["decision_id"] for t in exported["spooled_review_tasks"]] == [records[0]["id"]]
    assert [d["id"] for d in exported["spooled_decisions"]] == [records[0]["id"]]
    assert (report.spooled, report.review_tasks) == (1, 1)
    assert service.export("alice@example.com")["spooled_review_tasks"] == []
    kept = service.export("bob@example.com")
    assert len(kept["spooled_review_tasks"]) == len(kept["spooled_decisions"]) == 1
