"""The ``explain`` section of a deployment: when to explain decisions and how to word reasons.

.. code-block:: yaml

    explain:
      mode: adverse            # all | adverse | on_request
      top_k: 4
      reasons:
        debt_ratio: {code: R12, text: "Debt is high relative to income"}
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

ExplainMode = Literal["all", "adverse", "on_request"]
ExplainMethod = Literal["auto", "tree", "linear", "kernel", "permutation"]


class ReasonText(BaseModel):
    """How one feature is named when it is a principal reason for an adverse outcome."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    code: str = Field(min_length=1, max_length=32, description="Stable reason code, e.g. R12.")
    text: str = Field(min_length=1, max_length=200, description="Text shown to the customer.")


class ExplainConfig(BaseModel):
    """``explain``: per-decision feature contributions and reason codes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: ExplainMode = Field(
        "adverse",
        description="all: explain every decision; adverse: only adverse outcomes; "
        "on_request: only when GET /v1/decisions/{id}/explanation asks.",
    )
    method: ExplainMethod = Field(
        "auto",
        description="auto picks exact tree or linear contributions when the model allows, "
        "else permutation within `budget_ms`.",
    )
    top_k: int = Field(4, ge=1, le=20, description="Reason codes per adverse decision.")
    adverse_outcomes: list[str] = Field(
        default_factory=lambda: ["decline"],
        description="Outcomes that count as adverse (explained in `adverse` mode, with reasons).",
    )
    budget_ms: float = Field(
        200, gt=0, description="Time budget of a model-agnostic explanation, per row."
    )
    reasons: dict[str, ReasonText] = Field(
        default_factory=dict,
        description="Reason code and text per request field; fields not listed get their "
        "name and direction.",
    )
