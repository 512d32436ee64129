"""Human review: the queue of decisions waiting for a person, and their verdicts as labels.

`new_task_values` gives the row the request path inserts with a decision routed to review;
`ReviewQueue` is the life cycle (claim with a lease, resolve, release, escalate) and the
counts; `ReviewMonitor` keeps the review gauges and the depth the request path checks
against capacity; `bastion.review.feedback` stores labels (a verdict is one, source
``review``). See docs/review.md.
"""

from bastion.review.feedback import SOURCES, Feedback, add_feedback
from bastion.review.monitor import ReviewMonitor
from bastion.review.queue import ReviewQueue
from bastion.review.tasks import REASONS, STATUSES, new_task_values
from bastion.review.views import QueueStats, TaskSummary, TaskView

__all__ = [
    "REASONS",
    "SOURCES",
    "STATUSES",
    "Feedback",
    "QueueStats",
    "ReviewMonitor",
    "ReviewQueue",
    "TaskSummary",
    "TaskView",
    "add_feedback",
    "new_task_values",
]
