"""The ``monitor`` section of a deployment: windows, drift settings, costs, alerts, webhooks.

.. code-block:: yaml

    monitor:
      window_minutes: 60
      interval_seconds: 60
      drift: {stattest_threshold: 0.1}
      costs: {fp: 1, fn: 5, review: 0.4}
      alerts:
        - name: feature_psi
          when: "features.exists(f, features[f].psi > 0.2)"
          for_windows: 2
          severity: warning
        - name: estimated_auc_drop
          when: >-
            has(estimated.roc_auc) && estimated.roc_auc != null && has(reference.roc_auc)
            && reference.roc_auc != null && reference.roc_auc - estimated.roc_auc > 0.05
      webhooks:
        - url: https://hooks.slack.com/services/T000/B000/XXXX
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bastion.monitor.methods import DriftConfig
from bastion.policy.rules import check_expression


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Costs(_Strict):
    """What each kind of error costs, for the business-cost performance metric."""

    fp: float = Field(ge=0, description="Cost of declining a good case.")
    fn: float = Field(ge=0, description="Cost of approving a bad case.")
    review: float = Field(0.0, ge=0, description="Cost of reviewing one case.")


class AlertRule(_Strict):
    """An alert: a CEL condition over each window's summary, true for N windows in a row."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$", description="Unique name.")
    when: str = Field(
        min_length=1,
        description="CEL over the window summary (`features`, `prediction`, `dataset`, "
        "`performance`, `estimated`, `reference`, `window`); true means the condition holds.",
    )
    for_windows: int = Field(
        1, ge=1, le=100, description="Consecutive windows the condition must hold to fire."
    )
    severity: Literal["info", "warning", "critical"] = "warning"
    summary: str | None = Field(None, max_length=200, description="Text for notifications.")

    @field_validator("when")
    @classmethod
    def _compiles(cls, value: str) -> str:
        check_expression(value)
        return value


class Webhook(_Strict):
    """Where alert notifications go (Slack-compatible JSON, retried with backoff)."""

    url: str = Field(pattern=r"^https?://", description="The endpoint to POST to.")
    timeout_seconds: float = Field(5.0, gt=0, le=60)
    max_attempts: int = Field(5, ge=1, le=20)


class MonitorConfig(_Strict):
    """``monitor``: how windows of decisions are compared with the reference, and alerts."""

    window_minutes: float | None = Field(
        None,
        gt=0,
        description="Each window covers this many minutes of decisions (60 when neither "
        "this nor window_rows is set).",
    )
    window_rows: int | None = Field(
        None, ge=10, description="Or: each window covers this many decisions (the latest)."
    )
    interval_seconds: float = Field(
        60, ge=1, description="How often the background job computes the latest window."
    )
    min_rows: int = Field(
        100, ge=1, description="Windows with fewer decisions are stored but not judged."
    )
    drift: DriftConfig = Field(default_factory=DriftConfig)
    costs: Costs | None = Field(None, description="Error costs for the business-cost metric.")
    alerts: list[AlertRule] = Field(default_factory=list)
    webhooks: list[Webhook] = Field(default_factory=list)

    @model_validator(mode="after")
    def _one_window_kind(self) -> MonitorConfig:
        if self.window_rows is not None and self.window_minutes is not None:
            raise ValueError("set window_minutes or window_rows, not both")
        names = [rule.name for rule in self.alerts]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"alert names must be unique, got {', '.join(duplicates)} twice")
        return self
