"""Concurrent reviewers never receive the same task (PostgreSQL: SKIP LOCKED; SQLite: the
write lock), and every task is handed out exactly once."""

from __future__ import annotations

import threading
from collections import Counter

from bastion.review import ReviewQueue
from bastion.store import Database
from tests.review.cases import add_case

REVIEWERS = 8
TASKS = 20


def test_concurrent_claims_hand_each_task_out_once(database: Database, queue: ReviewQueue) -> None:
    created = {add_case(database, priority=i % 5).task_id for i in range(TASKS)}
    start = threading.Barrier(REVIEWERS)
    claims: dict[str, list[str]] = {}
    failures: list[BaseException] = []

    def reviewer(name: str) -> None:
        mine: list[str] = []
        try:
            start.wait()
            while (view := queue.claim_next(name)) is not None:
                mine.append(view.task_id)
        except BaseException as exc:  # surfaced below: a thread's exception is lost otherwise
            failures.append(exc)
        claims[name] = mine

    threads = [threading.Thread(target=reviewer, args=(f"reviewer-{i}",)) for i in range(REVIEWERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert failures == []
    handed = Counter(task for mine in claims.values() for task in mine)
    assert set(handed) == created
    assert max(handed.values()) == 1
    owners = {view.task_id: view.claimed_by for view in queue.list(status="claimed", limit=100)}
    for name, mine in claims.items():
        assert all(owners[task] == name for task in mine)


def test_concurrent_claims_of_one_task_have_one_winner(
    database: Database, queue: ReviewQueue
) -> None:
    case = add_case(database)
    start = threading.Barrier(REVIEWERS)
    winners: list[str] = []
    conflicts: list[str] = []

    def reviewer(name: str) -> None:
        start.wait()
        try:
            queue.claim(case.task_id, name)
            winners.append(name)
        except Exception as exc:
            conflicts.append(type(exc).__name__)

    threads = [threading.Thread(target=reviewer, args=(f"reviewer-{i}",)) for i in range(REVIEWERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert len(winners) == 1
    assert conflicts == ["Conflict"] * (REVIEWERS - 1)
    assert queue.get(case.task_id).task.claimed_by == winners[0]
