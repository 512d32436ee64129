"""Reason codes: the top fields pushing toward the adverse outcome, in the spec's words."""

from __future__ import annotations

from typing import Any

from bastion.explain import reason_codes
from bastion.explain.config import ExplainConfig, ReasonText
from bastion.explain.explanation import make_explanation

CONTRIBUTIONS = {
    "debt_ratio": 0.9,
    "utilization": 0.4,
    "income": -0.7,
    "channel": 0.2,
    "age": 0.05,
    "amount": 0.1,
}
EXPLANATION = make_explanation("tree_shap", -2.0, CONTRIBUTIONS, "log_odds", -1.05, target=1)
FEATURES: dict[str, Any] = {
    "debt_ratio": 0.8,
    "utilization": 0.4,
    "income": 20_000.0,
    "channel": "partner",
    "age": None,
    "amount": 5_000.0,
}
MEDIANS = {"debt_ratio": 0.3, "utilization": 0.4, "income": 38_000.0, "amount": 9_000.0}


def test_top_k_positive_contributions_largest_first() -> None:
    reasons = reason_codes(EXPLANATION, ExplainConfig(top_k=3), FEATURES, MEDIANS)
    assert [r["field"] for r in reasons] == ["debt_ratio", "utilization", "channel"]
    assert [r["contribution"] for r in reasons] == [0.9, 0.4, 0.2]


def test_fields_that_lower_the_score_are_never_reasons() -> None:
    reasons = reason_codes(EXPLANATION, ExplainConfig(top_k=20), FEATURES, MEDIANS)
    assert "income" not in [r["field"] for r in reasons]
    assert len(reasons) == 5


def test_the_reason_map_names_code_and_text() -> None:
    config = ExplainConfig(
        reasons={"debt_ratio": ReasonText(code="R12", text="Debt is high relative to income")}
    )
    [first, *_] = reason_codes(EXPLANATION, config, FEATURES, MEDIANS)
    assert first == {
        "field": "debt_ratio",
        "code": "R12",
        "text": "Debt is high relative to income",
        "contribution": 0.9,
    }


def test_default_words_say_the_direction_against_the_reference_median() -> None:
    reasons = reason_codes(EXPLANATION, ExplainConfig(top_k=6), FEATURES, MEDIANS)
    texts = {r["field"]: (r["code"], r["text"]) for r in reasons}
    assert texts["debt_ratio"] == ("DEBT_RATIO", "debt_ratio is high")
    assert texts["amount"] == ("AMOUNT", "amount is low")
    # equal to the median, a category, a missing value: no direction to state
    assert texts["utilization"][1] == "utilization increases the risk score"
    assert texts["channel"][1] == "channel increases the risk score"
    assert texts["age"][1] == "age is missing"


def test_without_a_reference_no_direction_is_claimed() -> None:
    reasons = reason_codes(EXPLANATION, ExplainConfig(top_k=1), FEATURES)
    assert reasons[0]["text"] == "debt_ratio increases the risk score"
