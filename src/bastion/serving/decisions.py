"""A request's decisions: what the caller gets back and what the decision log keeps.

`assemble` turns the per-row results of one request (model output, outcome, policy block,
explanation) into the `Decision` answers and the decision records, index-aligned, so the
response and the stored record can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bastion.serving.decision_log import Record
from bastion.serving.deployment import LiveDeployment, Prediction
from bastion.serving.guard import GuardedBatch


@dataclass(frozen=True)
class Decision:
    decision_id: str
    deployment: str
    model_name: str
    model_version: int
    output: dict[str, Any]
    outcome: Any
    latency_ms: float
    guard: dict[str, Any]
    #: the ``policy`` block (None without a policy, and on the pure inference path)
    policy: dict[str, Any] | None = None
    #: reason codes of an explained adverse decision
    reasons: list[dict[str, Any]] | None = None

    def as_response(self) -> dict[str, Any]:
        response = {
            "decision_id": self.decision_id,
            "deployment": self.deployment,
            "model": {"name": self.model_name, "version": self.model_version},
            "prediction": self.output,
            "outcome": self.outcome,
            "guard": self.guard,
            "latency_ms": round(self.latency_ms, 3),
        }
        if self.policy is not None:
            response["policy"] = self.policy
            response["fallback"] = self.policy["fallback"]
        if self.reasons is not None:
            response["reasons"] = self.reasons
        return response


@dataclass(frozen=True)
class Rows:
    """Per-row results of one request, index-aligned with its guarded batch."""

    ids: list[str]
    subject_keys: list[str | None]
    predictions: list[Prediction | None]
    outcomes: list[Any]
    policies: list[dict[str, Any] | None]
    explanations: list[dict[str, Any] | None]


def assemble(
    deployment: LiveDeployment,
    batch: GuardedBatch,
    rows: Rows,
    *,
    now: datetime,
    latency_ms: float,
) -> tuple[list[Decision], list[Record]]:
    """The answers and the decision records of one request, in order."""
    version = deployment.version
    decisions: list[Decision] = []
    records: list[Record] = []
    for i, prediction in enumerate(rows.predictions):
        # A row the model could not score (fallback) keeps an empty output.
        output = {} if prediction is None else prediction.output
        explanation = rows.explanations[i]
        reasons = explanation["reasons"] if explanation is not None else None
        decisions.append(
            Decision(
                decision_id=rows.ids[i],
                deployment=deployment.name,
                model_name=version.name,
                model_version=version.version,
                output=output,
                outcome=rows.outcomes[i],
                latency_ms=latency_ms,
                guard=batch.guards[i],
                policy=rows.policies[i],
                reasons=reasons or None,
            )
        )
        records.append(
            {
                "id": rows.ids[i],
                "created_at": now,
                "deployment": deployment.name,
                "model_name": version.name,
                "model_version": version.version,
                "subject_key": rows.subject_keys[i],
                "inputs": batch.stored_rows[i],
                "outputs": output,
                "outcome": rows.outcomes[i],
                "latency_ms": latency_ms,
                "guard": batch.guards[i],
                "policy": rows.policies[i],
                "explanation": explanation,
            }
        )
    return decisions, records
