"""The ``policy`` section of a deployment: rules, bands, the fallback and human review.

Configuration only (pydantic models the spec embeds); `bastion.policy.engine` turns it into
the object that decides on the request path.

.. code-block:: yaml

    policy:
      rules:
        - {name: underage, when: "features.age < 18", outcome: decline, reason: R01}
      bands: {approve_below: 0.2, decline_at_or_above: 0.6}
      fallback: {outcome: review, reason: MODEL_UNAVAILABLE}
      review:
        priority: "prediction.score * double(features.amount)"
        sla_minutes: 240
        capacity: 500
        overflow: nearest_band
        exploration: 0.02
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import orjson
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bastion.policy.bands import ScoreBands, ValueBand
from bastion.policy.rules import OUTCOME_PATTERN, OnError, RuleSpec, check_expression


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Fallback(_Strict):
    """What to decide when the model fails or times out and no rule fired."""

    outcome: str = Field(
        "review", pattern=OUTCOME_PATTERN, description="Outcome recorded, flagged as fallback."
    )
    reason: str = Field(
        "MODEL_UNAVAILABLE", min_length=1, max_length=64, description="Reason code recorded."
    )


class ReviewConfig(_Strict):
    """``policy.review``: the human review queue for this deployment."""

    priority: str | None = Field(
        None,
        description="CEL expression over `features`, `prediction` and `request` giving a "
        "number; higher is reviewed first. Default: the model score (or 0).",
    )
    sla_minutes: float = Field(
        240, gt=0, description="A task not resolved this long after creation is overdue."
    )
    lease_minutes: float = Field(
        15, gt=0, description="How long a claim lasts before the task returns to the queue."
    )
    capacity: int | None = Field(
        None,
        ge=1,
        description="Most open tasks; past it `overflow` decides instead of a reviewer. "
        "Unset: no limit.",
    )
    overflow: str = Field(
        "nearest_band",
        description="Outcome when the queue is full: `nearest_band` (approve or decline, "
        "whichever band edge the score is nearer), or an outcome label.",
    )
    exploration: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Share of automatically decided cases also sent to review; the "
        "sampling probability is recorded with each task.",
    )
    verdicts: dict[str, Any] = Field(
        default_factory=lambda: {"approve": 0, "decline": 1},
        min_length=1,
        description="Verdicts a reviewer may give, and the training label each becomes "
        "(recorded as feedback with source=review).",
    )
    exploration_seed: int | None = Field(
        None, description="Seed for the exploration sampler (tests and replays)."
    )

    @field_validator("priority")
    @classmethod
    def _priority_compiles(cls, value: str | None) -> str | None:
        if value is not None:
            check_expression(value)
        return value

    @model_validator(mode="after")
    def _overflow_label(self) -> ReviewConfig:
        if self.overflow != "nearest_band" and not re.match(OUTCOME_PATTERN, self.overflow):
            raise ValueError(
                f"overflow must be nearest_band or an outcome label, got {self.overflow!r}"
            )
        return self


class PolicyConfig(_Strict):
    """``policy``: ordered CEL rules, then bands; a fallback when the model cannot answer."""

    version: str | None = Field(
        None,
        max_length=64,
        description="A label for this policy, recorded with every decision. Default: a hash "
        "of the policy's content.",
    )
    rules: list[RuleSpec] = Field(
        default_factory=list, description="Evaluated in order; the first true rule decides."
    )
    on_rule_error: OnError = Field(
        "skip",
        description="A rule that fails at run time: skip it (counted and logged), or stop "
        "and apply the fallback.",
    )
    bands: ScoreBands | None = Field(None, description="Score bands for classifiers.")
    value_bands: list[ValueBand] | None = Field(
        None, description="Value bands for regressors, in increasing order."
    )
    fallback: Fallback = Field(
        default_factory=Fallback,
        description="Outcome when the model fails or times out and no rule fired.",
    )
    review: ReviewConfig = Field(default_factory=ReviewConfig)

    @model_validator(mode="after")
    def _one_kind_of_bands(self) -> PolicyConfig:
        if self.bands is not None and self.value_bands is not None:
            raise ValueError("set bands (classifiers) or value_bands (regressors), not both")
        return self

    @property
    def resolved_version(self) -> str:
        """The label, or the first 12 hex digits of the content hash."""
        if self.version is not None:
            return self.version
        content = orjson.dumps(
            self.model_dump(mode="json", exclude={"version"}), option=orjson.OPT_SORT_KEYS
        )
        return hashlib.sha256(content).hexdigest()[:12]
