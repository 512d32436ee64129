"""The decision log: group commit, durability before acknowledgement, spool and replay."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import select

from bastion.errors import NotReady
from bastion.review import new_task_values
from bastion.serving.decision_log import DecisionLog, Record
from bastion.store import Database
from bastion.store.tables import ReviewTaskRow

UNREACHABLE = "postgresql+psycopg://root@127.0.0.1:1/test?connect_timeout=1"


def _record(deployment: str = "credit") -> Record:
    return {
        "id": str(uuid.uuid4()),
        "created_at": datetime.now(UTC),
        "deployment": deployment,
        "model_name": "credit",
        "model_version": 1,
        "subject_key": None,
        "inputs": {"income": 1.0},
        "outputs": {"score": 0.25},
        "outcome": 0,
        "latency_ms": 1.5,
    }


async def _record_all(log: DecisionLog, batches: list[list[Record]]) -> None:
    await log.start()
    try:
        await asyncio.gather(*(log.record(batch) for batch in batches))
    finally:
        await log.close()


def test_record_returns_after_commit_and_groups_concurrent_writers(
    database: Database, tmp_path: Path
) -> None:
    log = DecisionLog(database, tmp_path / "spool")
    batches = [[_record()] for _ in range(200)]

    asyncio.run(_record_all(log, batches))

    for batch in batches:
        assert log.get(batch[0]["id"]) is not None
    assert log.stats.committed == 200
    assert log.stats.commits < 200, "concurrent records should share transactions"


def test_unreachable_database_spools_then_replays(database: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    offline = DecisionLog(Database(UNREACHABLE), spool)
    batches = [[_record(), _record()] for _ in range(5)]

    asyncio.run(_record_all(offline, batches))

    assert offline.stats.spooled == 10
    assert list(spool.glob("decisions-*.jsonl"))

    online = DecisionLog(database, spool)
    asyncio.run(_record_all(online, []))

    assert not list(spool.glob("decisions-*.jsonl"))
    stored = [online.get(record["id"]) for batch in batches for record in batch]
    assert all(record is not None for record in stored)


def test_replay_skips_decisions_already_stored(database: Database, tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    record = _record()
    asyncio.run(_record_all(DecisionLog(database, spool), [[dict(record)]]))
    asyncio.run(_record_all(DecisionLog(Database(UNREACHABLE), spool), [[dict(record)]]))

    replayed = DecisionLog(database, spool)
    asyncio.run(_record_all(replayed, []))

    assert replayed.get(record["id"]) is not None
    assert not list(spool.glob("decisions-*.jsonl"))


def test_record_refuses_beyond_max_pending(database: Database, tmp_path: Path) -> None:
    log = DecisionLog(database, tmp_path / "spool", max_pending=3)

    async def scenario() -> Any:
        await log.start()
        try:
            return await log.record([_record() for _ in range(4)])
        finally:
            await log.close()

    with pytest.raises(NotReady):
        asyncio.run(scenario())


def test_record_after_close_is_refused(database: Database, tmp_path: Path) -> None:
    log = DecisionLog(database, tmp_path / "spool")

    async def scenario() -> None:
        await log.start()
        await log.close()
        await log.record([_record()])

    with pytest.raises(NotReady):
        asyncio.run(scenario())


def _task(record: Record) -> dict[str, Any]:
    return new_task_values(
        decision_id=record["id"],
        deployment=record["deployment"],
        subject_key=None,
        created_at=record["created_at"],
        priority=0.5,
        reason="band",
        sampling_probability=1.0,
        model_outcome="approve",
        sla_minutes=30,
    )


def _stored_tasks(database: Database) -> dict[str, str]:
    with database.transaction() as session:
        return {row.decision_id: row.id for row in session.scalars(select(ReviewTaskRow))}


async def _record_with_tasks(log: DecisionLog, records: list[Record], tasks: list[Any]) -> None:
    await log.start()
    try:
        await log.record(records, tasks)
    finally:
        await log.close()


def test_review_tasks_are_committed_with_their_decisions(
    database: Database, tmp_path: Path
) -> None:
    records = [_record(), _record()]
    task = _task(records[0])

    asyncio.run(_record_with_tasks(DecisionLog(database, tmp_path / "spool"), records, [task]))

    assert _stored_tasks(database) == {records[0]["id"]: task["id"]}


def test_review_tasks_are_spooled_and_replayed_with_their_decisions(
    database: Database, tmp_path: Path
) -> None:
    spool = tmp_path / "spool"
    record = _record()
    task = _task(record)
    asyncio.run(_record_with_tasks(DecisionLog(Database(UNREACHABLE), spool), [record], [task]))
    # a spool file from before review tasks existed: decision lines only, no policy columns
    old = _record()
    (spool / "decisions-1-1-old.jsonl").write_bytes(orjson.dumps(old) + b"\n")

    online = DecisionLog(database, spool)
    asyncio.run(_record_all(online, []))

    assert _stored_tasks(database) == {record["id"]: task["id"]}
    with database.transaction() as session:
        stored = session.get(ReviewTaskRow, task["id"])
        assert stored is not None
        assert stored.due_at == task["due_at"]
    assert online.get(old["id"]) is not None
    assert not list(spool.glob("decisions-*.jsonl"))
