"""Property: whatever the priorities and ages, reviewers receive tasks in queue order
(highest priority first, then oldest) and each exactly once."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from bastion.review import ReviewQueue
from bastion.store import Database
from bastion.store.tables import DecisionRow, ReviewTaskRow
from tests.review.cases import NOW, add_case

cases = st.lists(
    st.tuples(st.sampled_from([0.0, 0.5, 1.0, 250.0]), st.integers(0, 600)),
    min_size=1,
    max_size=8,
)


@settings(
    max_examples=15,
    deadline=None,
    # the database is emptied at the start of every example
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(cases=cases)
def test_claim_next_follows_priority_then_age(
    database: Database, queue: ReviewQueue, cases: list[tuple[float, int]]
) -> None:
    with database.transaction() as session:
        session.execute(delete(ReviewTaskRow))
        session.execute(delete(DecisionRow))
    created = [
        (
            priority,
            NOW - timedelta(minutes=age),
            add_case(database, priority=priority, created_at=NOW - timedelta(minutes=age)).task_id,
        )
        for priority, age in cases
    ]

    handed = []
    while (view := queue.claim_next("ann")) is not None:
        handed.append(view.task_id)

    expected = sorted(created, key=lambda c: (-c[0], c[1], c[2]))
    assert handed == [task_id for _, _, task_id in expected]
