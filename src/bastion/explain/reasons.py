"""Reason codes: the principal reasons for an adverse outcome, in words a customer can read.

The top ``k`` fields with the largest positive contributions toward the adverse score (the
positive class of a classifier, the value of a regressor), worded by the spec's reason map,
or by default as the field name and the direction of its value.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bastion.explain.config import ExplainConfig
from bastion.explain.explanation import Explanation


def reason_codes(
    explanation: Explanation,
    config: ExplainConfig,
    features: Mapping[str, Any],
    reference: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """The top ``config.top_k`` fields pushing toward the adverse outcome.

    Parameters
    ----------
    explanation : Explanation
    config : ExplainConfig
        ``top_k`` and the ``reasons`` map (code and text per field).
    features : mapping
        The request's fields, to say whether a value is high or low.
    reference : mapping of str to float, optional
        Reference medians of numeric fields (``Explainer.reference``); without one, a field
        is said to increase the risk score.

    Returns
    -------
    list of dict
        ``{"field", "code", "text", "contribution"}``, largest contribution first; fields
        that lower the score are never reasons.
    """
    pushing = [(f, c) for f, c in explanation.contributions.items() if c > 0.0]
    pushing.sort(key=lambda item: (-item[1], item[0]))
    reasons = []
    for field, contribution in pushing[: config.top_k]:
        mapped = config.reasons.get(field)
        reasons.append(
            {
                "field": field,
                "code": mapped.code if mapped else field.upper(),
                "text": mapped.text if mapped else _default_text(field, features, reference),
                "contribution": contribution,
            }
        )
    return reasons


def _default_text(
    field: str, features: Mapping[str, Any], reference: Mapping[str, float] | None
) -> str:
    value = features.get(field)
    if value is None:
        return f"{field} is missing" if field in features else f"{field} increases the risk score"
    median = (reference or {}).get(field)
    if median is not None and isinstance(value, int | float) and not isinstance(value, bool):
        if value > median:
            return f"{field} is high"
        if value < median:
            return f"{field} is low"
    return f"{field} increases the risk score"
