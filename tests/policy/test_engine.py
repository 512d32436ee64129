"""`DecisionPolicy`: rules, then bands, then the fallback; overflow by the nearest band."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.errors import SpecError
from bastion.policy.config import PolicyConfig
from bastion.policy.engine import DecisionPolicy, rule_features

CLASSES = [0, 1]


def policy(task: str = "classification", **config: Any) -> DecisionPolicy:
    return DecisionPolicy(PolicyConfig.model_validate(config), task=task, classes=CLASSES)


def test_rule_features_turns_whole_numbers_into_doubles_and_nan_into_null() -> None:
    features = rule_features({"a": 3, "b": float("nan"), "c": True, "d": "x", "e": 1.5})

    assert features == {"a": 3.0, "b": None, "c": True, "d": "x", "e": 1.5}
    assert isinstance(features["a"], float)


def test_without_bands_the_model_label_decides() -> None:
    result = policy().decide({}, {"label": 1, "score": 0.9}, {})

    assert (result.outcome, result.source) == (1, "model")


def test_model_failure_with_a_rule_on_features_is_decided_by_the_rule() -> None:
    engine = policy(
        rules=[
            {"name": "minor", "when": "features.age < 18.0", "outcome": "decline", "reason": "A"}
        ],
        bands={"approve_below": 0.2, "decline_at_or_above": 0.6},
    )

    by_rule = engine.decide({"age": 16.0}, None, {})
    by_fallback = engine.decide({"age": 40.0}, None, {})

    assert (by_rule.outcome, by_rule.source, by_rule.fallback) == ("decline", "rule", True)
    assert (by_fallback.outcome, by_fallback.source) == ("review", "fallback")
    assert by_fallback.reason == "MODEL_UNAVAILABLE"


def test_a_rule_on_the_missing_prediction_is_a_rule_error_then_the_fallback() -> None:
    engine = policy(
        rules=[
            {"name": "risky", "when": "prediction.score > 0.9", "outcome": "decline", "reason": "S"}
        ],
        bands={"approve_below": 0.2, "decline_at_or_above": 0.6},
    )

    result = engine.decide({}, None, {})

    assert result.source == "fallback"
    assert [e.name for e in result.rule_errors] == ["risky"]


def test_score_bands_on_a_regressor_fail_with_the_field() -> None:
    with pytest.raises(SpecError) as raised:
        policy("regression", bands={"approve_below": 0.2, "decline_at_or_above": 0.6})

    assert raised.value.errors[0].field == "policy.bands"
    assert "binary classifier" in raised.value.errors[0].message


def test_value_bands_decide_a_regressor() -> None:
    engine = policy(
        "regression",
        value_bands=[
            {"name": "small", "outcome": "approve", "below": 100.0},
            {"name": "middle", "outcome": "review", "below": 200.0},
            {"name": "large", "outcome": "decline"},
        ],
    )

    result = engine.decide({}, {"value": 150.0}, {})

    assert (result.outcome, result.band, result.source) == ("review", "middle", "band")
    assert engine.nearest_band({"value": 120.0}) == ("approve", "small")
    assert engine.nearest_band({"value": 190.0}) == ("decline", "large")


@given(st.floats(min_value=0.0, max_value=1.0))
def test_nearest_band_never_reviews_and_keeps_clear_cases(score: float) -> None:
    engine = policy(bands={"approve_below": 0.2, "decline_at_or_above": 0.6})

    nearest = engine.nearest_band({"score": score})

    assert nearest is not None
    outcome, _ = nearest
    assert outcome in ("approve", "decline")
    if score < 0.2:
        assert outcome == "approve"
    if score >= 0.6:
        assert outcome == "decline"
    if 0.2 <= score < 0.6:
        assert outcome == ("approve" if score - 0.2 < 0.6 - score else "decline")


def test_overflow_with_a_label_decides_that_label() -> None:
    engine = policy(
        bands={"approve_below": 0.2, "decline_at_or_above": 0.6},
        review={"capacity": 3, "overflow": "decline"},
    )

    overflow = engine.overflow({"score": 0.3})

    assert overflow is not None
    assert (overflow.outcome, overflow.source, overflow.reason) == (
        "decline",
        "overflow",
        "REVIEW_CAPACITY",
    )


def test_priority_expression_and_its_default() -> None:
    with_expression = policy(review={"priority": "prediction.score * features.amount"})
    default = policy()

    assert with_expression.priority({"amount": 1000.0}, {"score": 0.5}, {}) == (500.0, None)
    assert default.priority({}, {"score": 0.5}, {}) == (0.5, None)
    value, problem = with_expression.priority({}, {"score": 0.5}, {})
    assert value == 0.5
    assert problem is not None
