"""The review queue's life cycle on SQLite and PostgreSQL: claim, lease, resolve, release,
escalate, overdue and counts."""

from __future__ import annotations

import pytest

from bastion.errors import Conflict, InvalidInput, NotFound
from bastion.monitor.metrics import ServingMetrics
from bastion.review import ReviewQueue
from bastion.store import Database
from bastion.store.tables import FeedbackRow
from tests.review.cases import NOW, MovableClock, add_case


def _overturned(metrics: ServingMetrics, deployment: str, overturned: str) -> float:
    value = metrics.registry.get_sample_value(
        "bastion_review_resolved_total", {"deployment": deployment, "overturned": overturned}
    )
    return value or 0.0


def test_claim_next_hands_out_the_highest_priority_then_the_oldest(
    database: Database, queue: ReviewQueue
) -> None:
    low = add_case(database, priority=0.1)
    old_high = add_case(database, priority=0.9, created_at=NOW.replace(hour=9))
    new_high = add_case(database, priority=0.9, created_at=NOW.replace(hour=10))

    order = [queue.claim_next("ann") for _ in range(4)]

    assert [v.task_id if v else None for v in order] == [
        old_high.task_id,
        new_high.task_id,
        low.task_id,
        None,
    ]


def test_claim_next_takes_only_the_named_deployment(database: Database, queue: ReviewQueue) -> None:
    add_case(database, deployment="credit", priority=0.9)
    fraud = add_case(database, deployment="fraud", priority=0.1)

    claimed = queue.claim_next("ann", "fraud")

    assert claimed is not None
    assert claimed.task_id == fraud.task_id
    assert queue.claim_next("ann", "fraud") is None


def test_claim_is_a_lease_that_lapses_back_to_the_queue(
    database: Database, queue: ReviewQueue, clock: MovableClock
) -> None:
    case = add_case(database)
    first = queue.claim_next("ann")
    assert first is not None
    assert first.task.claimed_by == "ann"
    assert first.task.lease_expires_at == NOW.replace(minute=10)  # lease_minutes: 10
    assert queue.claim_next("bob") is None

    clock.advance(minutes=10, seconds=1)

    assert [t.status for t in queue.list(status="open")] == ["open"]
    second = queue.claim_next("bob")
    assert second is not None
    assert second.task_id == case.task_id
    assert second.task.claimed_by == "bob"


def test_claim_refuses_a_task_another_reviewer_holds(
    database: Database, queue: ReviewQueue
) -> None:
    case = add_case(database)
    queue.claim(case.task_id, "ann")

    with pytest.raises(Conflict, match="claimed by ann until"):
        queue.claim(case.task_id, "bob")
    renewed = queue.claim(case.task_id, "ann")

    assert renewed.task.claimed_by == "ann"


def test_resolve_records_the_verdict_as_review_feedback(
    database: Database, queue: ReviewQueue, metrics: ServingMetrics, clock: MovableClock
) -> None:
    case = add_case(database, reason="exploration", sampling_probability=0.05, subject_key="k:1")
    queue.claim(case.task_id, "ann")
    clock.advance(minutes=3)

    view = queue.resolve(case.task_id, "ann", "decline", "income does not match the payslip")

    assert (view.status, view.task.verdict, view.task.resolved_by) == ("resolved", "decline", "ann")
    assert view.notes == "ann: income does not match the payslip"
    assert [(f.label, f.source, f.sampling_probability) for f in view.feedback] == [
        (1, "review", 0.05)
    ]
    with database.transaction() as session:
        (row,) = session.query(FeedbackRow).all()
    assert (row.decision_id, row.model_name, row.model_version) == (case.decision_id, "credit", 3)
    assert (row.subject_key, row.actor, row.created_at) == ("k:1", "ann", clock())
    assert _overturned(metrics, "credit", "true") == 1  # model band said "review"


def test_resolve_counts_a_verdict_equal_to_the_band_as_not_overturned(
    database: Database, queue: ReviewQueue, metrics: ServingMetrics
) -> None:
    case = add_case(database, model_outcome="approve")
    queue.claim(case.task_id, "ann")

    queue.resolve(case.task_id, "ann", "approve", None)

    assert _overturned(metrics, "credit", "false") == 1
    assert _overturned(metrics, "credit", "true") == 0


def test_resolve_refuses_a_verdict_the_deployment_does_not_allow(
    database: Database, queue: ReviewQueue
) -> None:
    case = add_case(database)
    queue.claim(case.task_id, "ann")

    with pytest.raises(InvalidInput, match="approve, decline, refer") as raised:
        queue.resolve(case.task_id, "ann", "maybe", None)

    assert raised.value.errors[0].field == "verdict"
    assert queue.get(case.task_id).status == "claimed"


def test_resolve_needs_the_callers_claim(database: Database, queue: ReviewQueue) -> None:
    case = add_case(database)

    with pytest.raises(Conflict, match="does not hold it; claim it first"):
        queue.resolve(case.task_id, "ann", "approve", None)


def test_resolve_after_the_lease_lapsed_and_another_took_it_is_a_conflict(
    database: Database, queue: ReviewQueue, clock: MovableClock
) -> None:
    case = add_case(database)
    queue.claim(case.task_id, "ann")
    clock.advance(minutes=11)
    queue.claim(case.task_id, "bob")

    with pytest.raises(Conflict, match=r"claimed by bob until .* not by ann"):
        queue.resolve(case.task_id, "ann", "approve", None)


def test_resolve_after_a_lapse_nobody_used_still_counts(
    database: Database, queue: ReviewQueue, clock: MovableClock
) -> None:
    case = add_case(database)
    queue.claim(case.task_id, "ann")
    clock.advance(minutes=30)

    assert queue.resolve(case.task_id, "ann", "approve", None).status == "resolved"


def test_a_resolved_task_cannot_be_claimed_or_resolved_again(
    database: Database, queue: ReviewQueue
) -> None:
    case = add_case(database)
    queue.claim(case.task_id, "ann")
    queue.resolve(case.task_id, "ann", "approve", None)

    with pytest.raises(Conflict, match="already resolved \\(approve by ann"):
        queue.claim(case.task_id, "bob")
    with pytest.raises(Conflict, match="already resolved"):
        queue.resolve(case.task_id, "ann", "decline", None)
    assert queue.claim_next("bob") is None


def test_release_returns_the_task_to_the_queue(database: Database, queue: ReviewQueue) -> None:
    case = add_case(database)
    queue.claim(case.task_id, "ann")

    with pytest.raises(Conflict, match="cannot release"):
        queue.release(case.task_id, "bob")
    released = queue.release(case.task_id, "ann")

    assert (released.status, released.task.claimed_by) == ("open", None)
    again = queue.claim_next("bob")
    assert again is not None
    assert again.task_id == case.task_id


def test_escalate_raises_the_level_and_keeps_the_notes(
    database: Database, queue: ReviewQueue
) -> None:
    case = add_case(database)
    queue.claim(case.task_id, "ann")

    escalated = queue.escalate(case.task_id, "ann", "looks like a synthetic identity")

    assert (escalated.status, escalated.task.escalation_level) == ("escalated", 1)
    assert [t.task_id for t in queue.list(status="escalated")] == [case.task_id]
    senior = queue.claim_next("sam")
    assert senior is not None
    assert senior.notes == "ann: looks like a synthetic identity"
    released = queue.release(case.task_id, "sam")
    assert released.status == "escalated"
    queue.claim(case.task_id, "sam")
    resolved = queue.resolve(case.task_id, "sam", "decline", "confirmed")
    assert resolved.notes == "ann: looks like a synthetic identity\nsam: confirmed"
    assert resolved.task.escalation_level == 1


def test_overdue_tasks_are_flagged_listed_and_counted(
    database: Database, queue: ReviewQueue, clock: MovableClock
) -> None:
    late = add_case(database, sla_minutes=30)
    add_case(database, sla_minutes=120)
    done = add_case(database, sla_minutes=30)
    queue.claim(done.task_id, "ann")
    queue.resolve(done.task_id, "ann", "approve", None)

    clock.advance(minutes=45)

    assert [t.task_id for t in queue.list(overdue=True)] == [late.task_id]
    assert {t.task_id: t.overdue for t in queue.list()}[late.task_id] is True
    stats = queue.stats("credit")
    assert (stats.depth, stats.overdue) == (2, 1)


def test_stats_count_by_status_and_age_the_oldest_unresolved(
    database: Database, queue: ReviewQueue, clock: MovableClock
) -> None:
    add_case(database, created_at=NOW.replace(hour=11))
    claimed = add_case(database, priority=0.9)
    add_case(database, deployment="fraud")
    resolved = add_case(database, created_at=NOW.replace(hour=8), priority=1.0)
    queue.claim(resolved.task_id, "ann")
    queue.resolve(resolved.task_id, "ann", "approve", None)
    queue.claim(claimed.task_id, "ann")

    credit = queue.stats("credit")
    everything = queue.stats()

    assert credit.by_status == {"open": 1, "claimed": 1, "escalated": 0, "resolved": 1}
    assert (credit.depth, credit.oldest_age_seconds) == (2, 3600.0)
    assert (everything.depth, everything.by_status["open"]) == (3, 2)
    assert queue.stats("nothing-here").to_dict()["depth"] == 0
    clock.advance(minutes=11)
    assert queue.stats("credit").by_status["claimed"] == 0  # the lease lapsed


def test_get_shows_the_decision_a_reviewer_needs(database: Database, queue: ReviewQueue) -> None:
    explanation = {"method": "tree_shap", "contributions": {"income": -0.3}}
    case = add_case(database, subject_key="k:abc", explanation=explanation)

    view = queue.get(case.task_id).to_dict()

    decision = view["decision"]
    assert decision["inputs"] == {"income": 52000.0, "email": "<EMAIL>"}
    assert decision["prediction"]["score"] == 0.42
    assert decision["policy"]["band"] == "review"
    assert decision["explanation"] == explanation
    assert view["verdicts"] == ["approve", "decline", "refer"]
    assert "k:abc" not in repr(view)
    with pytest.raises(NotFound):
        queue.get("01234567-89ab-7def-8123-456789abcdef")


def test_list_rejects_unknown_status_and_bad_limits(queue: ReviewQueue) -> None:
    with pytest.raises(InvalidInput, match="open, claimed, escalated, resolved"):
        queue.list(status="pending")
    with pytest.raises(InvalidInput, match="limit"):
        queue.list(limit=0)


def test_list_resolved_shows_the_verdicts(database: Database, queue: ReviewQueue) -> None:
    case = add_case(database)
    add_case(database)
    queue.claim(case.task_id, "ann")
    queue.resolve(case.task_id, "ann", "refer", None)

    resolved = queue.list(status="resolved")

    assert [(t.task_id, t.verdict) for t in resolved] == [(case.task_id, "refer")]
    assert len(queue.list()) == 1


def test_unresolved_stats_leave_the_resolved_history_out(
    database: Database, queue: ReviewQueue, clock: MovableClock
) -> None:
    done = add_case(database, created_at=NOW.replace(hour=8))
    add_case(database, created_at=NOW.replace(hour=11), sla_minutes=30)
    queue.claim(done.task_id, "ann")
    queue.resolve(done.task_id, "ann", "approve", None)

    full = queue.stats_by_deployment()["credit"]
    unresolved = queue.stats_by_deployment(resolved=False)["credit"]

    assert (
        (unresolved.depth, unresolved.overdue, unresolved.oldest_age_seconds)
        == (
            full.depth,
            full.overdue,
            full.oldest_age_seconds,
        )
        == (1, 1, 3600.0)
    )
    assert (full.by_status["resolved"], unresolved.by_status["resolved"]) == (1, 0)
