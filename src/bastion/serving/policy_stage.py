"""The policy stage of the request path: decide each row, account for it, route reviews.

One `PolicyStage` per deployment with a ``policy`` section, built at start-up. Per request:

1. `evaluate` runs the deployment's `DecisionPolicy` over every row (pure, so large
   requests can run it in a worker thread);
2. `route` (on the event loop: it holds the exploration sampler and the capacity count)
   turns a ``review`` outcome into a review task, samples a share of automatic approvals
   and declines for review as exploration, and applies the overflow action when the
   deployment's unresolved tasks reach ``policy.review.capacity``;
3. `block` is the ``policy`` JSON stored with the decision and returned to the caller.

Rule errors are counted per rule and logged at most once a minute per rule, by name and
CEL message only (messages name types and keys, never values).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from bastion.monitor.metrics import ServingMetrics
from bastion.policy.engine import AUTOMATIC_OUTCOMES, DecisionPolicy, PolicyResult, rule_features
from bastion.registry import ModelVersion
from bastion.review import ReviewMonitor, new_task_values
from bastion.serving.decision_log import TaskRecord
from bastion.serving.deployment import Prediction

logger = logging.getLogger(__name__)

#: seconds between two log lines about the same failing rule
RULE_ERROR_LOG_INTERVAL = 60.0
#: the rule name under which a failing review priority expression is counted
PRIORITY_RULE = "review.priority"
#: the width of review_tasks.model_outcome
MODEL_OUTCOME_LENGTH = 64
#: requests with more rows than this evaluate their policy in a worker thread
INLINE_ROWS = 32


def request_meta(
    deployment: str, version: ModelVersion, subject_id: str | None, api: str
) -> dict[str, Any]:
    """The ``request`` variable of the rules for one row."""
    return {
        "deployment": deployment,
        "model": {"name": version.name, "version": version.version},
        "subject_present": subject_id is not None,
        "api": api,
    }


@dataclass(frozen=True)
class Routed:
    """A row's final policy result, its review routing and the task row to insert."""

    result: PolicyResult
    review: dict[str, Any] | None = None
    task: TaskRecord | None = None


class PolicyStage:
    def __init__(
        self,
        name: str,
        policy: DecisionPolicy,
        monitor: ReviewMonitor,
        metrics: ServingMetrics,
    ) -> None:
        self.name = name
        self.policy = policy
        self.monitor = monitor
        self.review = policy.review
        # Seeded when the spec says so (tests, replays); otherwise from the OS.
        self._rng = random.Random(self.review.exploration_seed)
        self._metrics = metrics
        self._overflow = metrics.review_overflow.labels(name)
        self._rule_hits = {
            rule: metrics.rule_hits.labels(name, rule) for rule in policy.rules.names
        }
        self._rule_errors = {
            rule: metrics.rule_errors.labels(name, rule)
            for rule in (*policy.rules.names, PRIORITY_RULE)
        }
        self._tasks_created = {
            reason: metrics.review_tasks_created.labels(name, reason)
            for reason in ("band", "rule", "fallback", "exploration")
        }
        self._last_logged: dict[str, float] = {}

    def evaluate(
        self,
        features: Sequence[Mapping[str, Any]],
        predictions: Sequence[Prediction | None],
        requests: Sequence[Mapping[str, Any]],
    ) -> list[PolicyResult]:
        """Decide every row; pure, safe to run in a worker thread."""
        return [
            self.policy.decide(f, None if p is None else p.output, r)
            for f, p, r in zip(features, predictions, requests, strict=True)
        ]

    async def decide(
        self,
        rows: Sequence[Mapping[str, Any]],
        predictions: Sequence[Prediction | None],
        requests: Sequence[Mapping[str, Any]],
        *,
        ids: Sequence[str],
        keys: Sequence[str | None],
        now: datetime,
    ) -> list[Routed]:
        """Decide and route a request's rows (`rows`: the validated request fields)."""
        features = [rule_features(row) for row in rows]
        if len(features) > INLINE_ROWS:
            # CEL runs some tens of microseconds a row: many rows would stall the loop.
            results = await asyncio.get_running_loop().run_in_executor(
                None, self.evaluate, features, predictions, requests
            )
        else:
            results = self.evaluate(features, predictions, requests)
        return [
            self.route(result, prediction, f, r, decision_id=i, subject_key=key, now=now)
            for result, prediction, f, r, i, key in zip(
                results, predictions, features, requests, ids, keys, strict=True
            )
        ]

    def route(
        self,
        result: PolicyResult,
        prediction: Prediction | None,
        features: Mapping[str, Any],
        request: Mapping[str, Any],
        *,
        decision_id: str,
        subject_key: str | None,
        now: datetime,
    ) -> Routed:
        """Count the result and route it to review (or overflow); call on the event loop."""
        self._account(result)
        output = None if prediction is None else prediction.output
        capacity = self.review.capacity
        full = capacity is not None and self.monitor.depth(self.name) >= capacity
        if result.outcome == "review":
            if full:
                overflow = self.policy.overflow(output)
                if overflow is not None and overflow.outcome != "review":
                    self._overflow.inc()
                    return Routed(
                        replace(
                            overflow,
                            rule=result.rule,
                            rule_errors=result.rule_errors,
                            fallback=result.fallback,
                        )
                    )
            reason: str = result.source if result.source in ("rule", "fallback") else "band"
            model_outcome = self._automatic_outcome(output)
            probability = 1.0
        elif (
            self.review.exploration > 0
            and not full
            and result.outcome in AUTOMATIC_OUTCOMES
            and self._rng.random() < self.review.exploration
        ):
            reason, model_outcome = "exploration", str(result.outcome)
            probability = self.review.exploration
        else:
            return Routed(result)
        if model_outcome is not None:
            model_outcome = model_outcome[:MODEL_OUTCOME_LENGTH]  # a class label may be long
        priority, problem = self.policy.priority(features, output, request)
        if problem is not None:
            self._rule_error(PRIORITY_RULE, problem)
        task = new_task_values(
            decision_id=decision_id,
            deployment=self.name,
            subject_key=subject_key,
            created_at=now,
            priority=priority,
            reason=reason,
            sampling_probability=probability,
            model_outcome=model_outcome,
            sla_minutes=self.review.sla_minutes,
        )
        self.monitor.note_created(self.name)
        self._tasks_created[reason].inc()
        review = {"task_id": task["id"], "reason": reason, "sampling_probability": probability}
        return Routed(result, review, task)

    def _automatic_outcome(self, output: Mapping[str, Any] | None) -> str | None:
        """What the policy would decide with nobody to look: the nearest band, else the
        model's own label; None without a model output."""
        nearest = self.policy.nearest_band(output)
        if nearest is not None:
            return nearest[0]
        if output is None:
            return None
        label = output.get("label", output.get("value"))
        return None if label is None else str(label)

    def _account(self, result: PolicyResult) -> None:
        if result.rule is not None and result.source == "rule":
            self._rule_hits[result.rule].inc()
        for error in result.rule_errors:
            self._rule_error(error.name, error.message)

    def _rule_error(self, rule: str, message: str) -> None:
        counter = self._rule_errors.get(rule)
        if counter is None:  # "<activation>": the request's values could not enter CEL
            counter = self._metrics.rule_errors.labels(self.name, rule)
            self._rule_errors[rule] = counter
        counter.inc()
        now = time.monotonic()
        if now - self._last_logged.get(rule, -RULE_ERROR_LOG_INTERVAL) >= RULE_ERROR_LOG_INTERVAL:
            self._last_logged[rule] = now
            logger.warning(
                "policy rule %s of deployment %s failed: %s (logged at most once a minute; "
                "see bastion_rule_errors_total)",
                rule,
                self.name,
                message,
            )

    def block(self, routed: Routed, prediction: Prediction | None) -> dict[str, Any]:
        """The ``policy`` JSON of one decision (record and response)."""
        result = routed.result
        raw_score = None if prediction is None else prediction.raw_score
        return {
            "version": self.policy.version,
            "source": result.source,
            "rule": result.rule,
            "band": result.band,
            "reason": result.reason,
            "rule_errors": [{"rule": e.name, "message": e.message} for e in result.rule_errors],
            "fallback": result.fallback,
            "calibrated": raw_score is not None,
            "raw_score": raw_score,
            "review": routed.review,
        }
