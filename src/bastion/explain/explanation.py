"""`Explanation`: the contributions of one decision, in the caller's fields, and how they add up.

Every explainer returns this one shape, so the decision log, the API, the review console and
the importance report never need to know which method produced it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Output = Literal["log_odds", "probability", "value"]

#: |base + sum - margin| above this (relative to the margin's scale) is an additivity failure
ADDITIVITY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Explanation:
    """Per-field contributions of one row, with the base value they start from.

    Attributes
    ----------
    method : str
        ``tree_shap``, ``tree_shap_native``, ``tree_shap_shap``, ``linear``, ``permutation``
        or ``kernel``.
    base_value : float
        The expected output over the reference data, in `output` space.
    contributions : dict of str to float
        One entry per request field; one-hot or other derived columns summed back.
    output : str
        The space the numbers add up in: ``log_odds`` (classifiers with a logistic link),
        ``probability`` or ``value`` (regressors, and raw scores of multiclass boosters).
    margin : float
        The model's output for this row in `output` space.
    additivity_error : float
        ``|base_value + sum(contributions) - margin|``.
    target : str, int or None
        The class whose score is explained (the positive class of a binary classifier, the
        predicted class of a multiclass one); None for regressors.
    truncated : bool
        True when a model-agnostic method stopped at its time budget before converging.
    """

    method: str
    base_value: float
    contributions: dict[str, float]
    output: Output
    margin: float
    additivity_error: float
    target: str | int | None = None
    truncated: bool = False
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def additive(self) -> bool:
        """Whether base + contributions reproduce the margin within `ADDITIVITY_TOLERANCE`."""
        return self.additivity_error <= ADDITIVITY_TOLERANCE * max(1.0, abs(self.margin))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; `from_dict` is the inverse."""
        return {
            "method": self.method,
            "base_value": self.base_value,
            "contributions": dict(self.contributions),
            "output": self.output,
            "margin": self.margin,
            "additivity_error": self.additivity_error,
            "target": self.target,
            "truncated": self.truncated,
            "details": dict(self.details),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Explanation:
        return cls(
            method=str(data["method"]),
            base_value=float(data["base_value"]),
            contributions={str(k): float(v) for k, v in data["contributions"].items()},
            output=data["output"],
            margin=float(data["margin"]),
            additivity_error=float(data["additivity_error"]),
            target=data.get("target"),
            truncated=bool(data.get("truncated", False)),
            details=dict(data.get("details") or {}),
        )


def make_explanation(
    method: str,
    base_value: float,
    contributions: dict[str, float],
    output: Output,
    margin: float,
    *,
    target: str | int | None = None,
    truncated: bool = False,
    details: dict[str, Any] | None = None,
) -> Explanation:
    """Build an `Explanation`, measuring its additivity error (the check every one gets)."""
    error = abs(base_value + sum(contributions.values()) - margin)
    return Explanation(
        method=method,
        base_value=float(base_value),
        contributions=contributions,
        output=output,
        margin=float(margin),
        additivity_error=float(error),
        target=target,
        truncated=truncated,
        details=details or {},
    )
