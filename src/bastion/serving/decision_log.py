"""The decision log: every decision durable before its response is sent.

Callers `await record(...)`; a single writer task commits everything that arrived since its
last commit in one transaction (group commit), so throughput grows with load while each
caller still waits only for its own record to be durable. When the database is unreachable,
records are appended to a local spool file (fsynced) instead, the request is still
acknowledged, and the spool is replayed into the database when it answers again. Replays
ignore ids already stored, so a crash between commit and spool clean-up duplicates nothing.

Review tasks created by a decision (policy outcome ``review``, or exploration) travel with
it: they are inserted in the same transaction as the decision records, and spooled in the
same file (one ``{"review_task": {...}}`` line each, after the decision lines; spool files
written before review tasks existed hold decision lines only and replay unchanged).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import orjson
from sqlalchemy import Insert, Table, select
from sqlalchemy.dialects import postgresql, sqlite

from bastion.errors import NotReady, StorageError
from bastion.store import Database
from bastion.store.tables import DecisionRow, ReviewTaskRow

logger = logging.getLogger(__name__)

Record = dict[str, Any]
#: the column values of one review_tasks row (`bastion.review.new_task_values`)
TaskRecord = dict[str, Any]
#: the key that marks a review task line in a spool file
_TASK_LINE = "review_task"
_TASK_TIMES = ("created_at", "due_at", "lease_expires_at", "resolved_at")


@dataclass(frozen=True)
class DecisionLogStats:
    committed: int
    spooled: int
    commits: int


class DecisionLog:
    """Batched, durable writer of decision records.

    Parameters
    ----------
    database:
        Where records go.
    spool_dir:
        Local folder for records written while the database is unreachable.
    max_pending:
        Most records waiting for a commit; beyond it `record` refuses with 503 rather than
        letting memory grow without bound.
    replay_interval:
        Seconds between attempts to replay the spool while it is not empty.
    """

    def __init__(
        self,
        database: Database,
        spool_dir: Path,
        *,
        max_pending: int = 20_000,
        replay_interval: float = 5.0,
        on_spool: Callable[[int], None] | None = None,
    ) -> None:
        self.database = database
        self.spool_dir = spool_dir
        self.max_pending = max_pending
        self.replay_interval = replay_interval
        self._on_spool = on_spool
        self._pending: list[tuple[list[Record], list[TaskRecord], asyncio.Future[None]]] = []
        self._pending_rows = 0
        self._wakeup = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="decision-log")
        self._closing = False
        self._last_replay = 0.0
        #: set when records are spooled, cleared when a replay empties the spool; saves a
        #: directory listing on every commit
        self._spool_waiting = False
        self._committed = 0
        self._spooled = 0
        self._commits = 0

    @property
    def pending(self) -> int:
        return self._pending_rows

    @property
    def stats(self) -> DecisionLogStats:
        return DecisionLogStats(self._committed, self._spooled, self._commits)

    async def start(self) -> None:
        """Replay any spool left by an earlier process, then start the writer."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._replay_spool)
        self._writer = asyncio.get_running_loop().create_task(self._run())

    async def record(self, records: list[Record], tasks: list[TaskRecord] | None = None) -> None:
        """Return once `records` (and the review `tasks` they created) are committed to the
        database in one transaction, or fsynced to the spool."""
        if self._closing or self._writer is None:
            raise NotReady("the decision log is not accepting records (server shutting down)")
        if self._pending_rows + len(records) > self.max_pending:
            raise NotReady("the decision log is behind; retry shortly")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((records, tasks or [], future))
        self._pending_rows += len(records)
        self._wakeup.set()
        await future

    async def close(self) -> None:
        """Commit everything pending, then stop. Safe to call twice."""
        self._closing = True
        if self._writer is not None:
            self._wakeup.set()
            await self._writer
            self._writer = None
        self._executor.shutdown(wait=True)

    def get(self, decision_id: str) -> Record | None:
        """A stored decision as a dict, or None. Blocking: call from a worker thread."""
        with self.database.transaction() as session:
            row = session.get(DecisionRow, decision_id)
            return None if row is None else row_to_record(row)

    def store_explanation(self, decision_id: str, explanation: dict[str, Any]) -> None:
        """Keep an explanation computed after the decision, unless one is stored already.
        Blocking: call from a worker thread."""
        with self.database.transaction() as session:
            row = session.get(DecisionRow, decision_id)
            # reads back None for SQL NULL and JSON null alike
            if row is not None and row.explanation is None:
                row.explanation = explanation

    def recent(self, deployment: str, limit: int = 100) -> list[Record]:
        with self.database.transaction() as session:
            rows = session.scalars(
                select(DecisionRow)
                .where(DecisionRow.deployment == deployment)
                .order_by(DecisionRow.created_at.desc())
                .limit(limit)
            )
            return [row_to_record(row) for row in rows]

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if not self._pending:
                if self._closing:
                    return
                self._wakeup.clear()
                timeout = self.replay_interval if self._spool_waiting else None
                try:
                    await asyncio.wait_for(self._wakeup.wait(), timeout)
                except TimeoutError:
                    await loop.run_in_executor(self._executor, self._replay_spool)
                continue
            batch, self._pending = self._pending, []
            records = [record for records, _, _ in batch for record in records]
            tasks = [task for _, tasks, _ in batch for task in tasks]
            try:
                await loop.run_in_executor(self._executor, self._write, records, tasks)
            except Exception as exc:
                for _, _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for _, _, future in batch:
                    if not future.done():
                        future.set_result(None)
            finally:
                self._pending_rows -= len(records)

    def _write(self, records: list[Record], tasks: Sequence[TaskRecord] = ()) -> None:
        try:
            with self.database.transaction() as session:
                session.execute(self._insert(), records)
                if tasks:
                    session.execute(self._insert_tasks(), list(tasks))
            self._committed += len(records)
            self._commits += 1
            if self._spool_waiting and time.monotonic() - self._last_replay > self.replay_interval:
                self._replay_spool()
        except StorageError:
            logger.warning("database unreachable; spooling %d decision records", len(records))
            self._spool(records, tasks)

    def _insert(self) -> Insert:
        # Core inserts on the table skip the ORM's per-object bookkeeping.
        table = cast(Table, DecisionRow.__table__)
        if self.database.is_sqlite:
            return sqlite.insert(table).on_conflict_do_nothing(index_elements=["id"])
        return postgresql.insert(table).on_conflict_do_nothing(index_elements=["id"])

    def _insert_tasks(self) -> Insert:
        # A replayed task may already be stored (by id, or by its decision): skip it.
        table = cast(Table, ReviewTaskRow.__table__)
        if self.database.is_sqlite:
            return sqlite.insert(table).on_conflict_do_nothing()
        return postgresql.insert(table).on_conflict_do_nothing()

    def _spool(self, records: list[Record], tasks: Sequence[TaskRecord]) -> None:
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        path = (
            self.spool_dir
            / f"decisions-{time.time_ns()}-{os.getpid()}-{uuid.uuid4().hex[:6]}.jsonl"
        )
        temporary = path.with_suffix(".partial")
        with temporary.open("wb") as handle:
            for record in records:
                handle.write(orjson.dumps(record, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n")
            for task in tasks:
                handle.write(
                    orjson.dumps({_TASK_LINE: task}, option=orjson.OPT_SERIALIZE_NUMPY) + b"\n"
                )
            handle.flush()
            os.fsync(handle.fileno())
        temporary.rename(path)
        self._spooled += len(records)
        self._spool_waiting = True
        if self._on_spool is not None:
            self._on_spool(len(records))

    def _spool_files(self) -> list[Path]:
        if not self.spool_dir.exists():
            return []
        return sorted(self.spool_dir.glob("decisions-*.jsonl"))

    def _replay_spool(self) -> None:
        self._last_replay = time.monotonic()
        files = self._spool_files()
        self._spool_waiting = bool(files)
        for path in files:
            records: list[Record] = []
            tasks: list[TaskRecord] = []
            for line in path.read_bytes().splitlines():
                if not line.strip():
                    continue
                item = orjson.loads(line)
                if _TASK_LINE in item:
                    tasks.append(_decode_spooled_task(item[_TASK_LINE]))
                else:
                    records.append(_decode_spooled(item))
            try:
                with self.database.transaction() as session:
                    if records:
                        session.execute(self._insert(), records)
                    if tasks:
                        session.execute(self._insert_tasks(), tasks)
            except StorageError:
                logger.warning("database still unreachable; %s stays spooled", path.name)
                return
            path.unlink()
            logger.info("replayed %d spooled decision records from %s", len(records), path.name)
        self._spool_waiting = False


def _decode_spooled(record: Record) -> Record:
    record["created_at"] = datetime.fromisoformat(record["created_at"])
    # spooled before decisions had these columns
    for column in ("guard", "policy", "explanation"):
        record.setdefault(column, None)
    return record


def _decode_spooled_task(task: TaskRecord) -> TaskRecord:
    for column in _TASK_TIMES:
        if isinstance(task.get(column), str):
            task[column] = datetime.fromisoformat(task[column])
    return task


def row_to_record(row: DecisionRow) -> Record:
    return {
        "decision_id": row.id,
        "created_at": row.created_at.isoformat(),
        "deployment": row.deployment,
        "model": {"name": row.model_name, "version": row.model_version},
        "subject_key": row.subject_key,
        "inputs": row.inputs,
        "outputs": row.outputs,
        "outcome": row.outcome,
        "latency_ms": row.latency_ms,
        "guard": row.guard,
        "policy": row.policy,
        "explanation": row.explanation,
    }
