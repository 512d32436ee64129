"""CEL decision rules: compiled once, evaluated in order, first true rule decides."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from bastion.errors import SpecError
from bastion.policy import CompiledRules, RuleHit, RuleSpec


def rule(name: str, when: str, outcome: str = "review", reason: str = "R00") -> RuleSpec:
    return RuleSpec(name=name, when=when, outcome=outcome, reason=reason)


def unchecked_rule(name: str, when: str) -> RuleSpec:
    """A rule built without validation, as code could hand to `CompiledRules.compile`."""
    return RuleSpec.model_construct(name=name, when=when, outcome="review", reason="R00")


def activation(
    features: dict[str, Any] | None = None, score: float = 0.5, **request: Any
) -> dict[str, Any]:
    return {
        "features": features or {},
        "prediction": {"score": score, "label": "bad", "probabilities": {"bad": score}},
        "request": {"deployment": "credit", "subject_present": True, **request},
    }


CREDIT_RULES = [
    rule("sanctioned", "features.country in ['XX', 'YY']", "decline", "SANCTIONS"),
    rule("large_amount", "features.amount >= 50000", "review", "LARGE_AMOUNT"),
    rule("confident_good", "prediction.score < 0.05", "approve", "LOW_RISK"),
]


def test_rules_fire_in_order_first_match_wins() -> None:
    rules = CompiledRules.compile(CREDIT_RULES)

    result = rules.evaluate(activation({"country": "XX", "amount": 90000}, score=0.01))

    assert result.hit == RuleHit("sanctioned", "decline", "SANCTIONS")
    assert result.errors == ()
    assert not result.failed


def test_rules_later_rule_fires_when_earlier_are_false() -> None:
    rules = CompiledRules.compile(CREDIT_RULES)

    result = rules.evaluate(activation({"country": "DE", "amount": 1000}, score=0.01))

    assert result.hit == RuleHit("confident_good", "approve", "LOW_RISK")


def test_rules_no_match_returns_no_hit() -> None:
    rules = CompiledRules.compile(CREDIT_RULES)

    result = rules.evaluate(activation({"country": "DE", "amount": 1000}, score=0.5))

    assert result.hit is None
    assert result.errors == ()


def test_rules_see_request_metadata() -> None:
    rules = CompiledRules.compile(
        [rule("anonymous", "!request.subject_present && request.deployment == 'credit'")]
    )

    assert rules.evaluate(activation(subject_present=False)).hit is not None
    assert rules.evaluate(activation(subject_present=True)).hit is None


def test_rules_custom_outcome_label() -> None:
    rules = CompiledRules.compile(
        [rule("manual", "prediction.label == 'bad'", outcome="refer_to_branch", reason="REF")]
    )

    hit = rules.evaluate(activation()).hit

    assert hit == RuleHit("manual", "refer_to_branch", "REF")


def test_rulespec_rejects_outcome_not_a_label() -> None:
    with pytest.raises(ValidationError, match="outcome"):
        rule("bad", "true", outcome="Approve!")


def test_rulespec_rejects_unknown_fields() -> None:
    with pytest.raises(ValidationError, match="priority"):
        RuleSpec.model_validate(
            {"name": "r", "when": "true", "outcome": "approve", "reason": "R", "priority": 1}
        )


def test_compile_error_names_rule_and_position() -> None:
    rules = [rule("ok", "true"), unchecked_rule("broken", "features.amount >")]

    with pytest.raises(SpecError) as info:
        CompiledRules.compile(rules)

    (error,) = info.value.errors
    assert error.field == "rules[1].when"
    assert "line 1, column 18" in error.message
    assert error.value == "features.amount >"
    assert "rules[1].when" in str(info.value)


def test_rule_spec_refuses_an_expression_that_does_not_compile() -> None:
    with pytest.raises(ValidationError, match="line 1, column 18"):
        rule("broken", "features.amount >")


def test_compile_error_reports_every_broken_rule() -> None:
    rules = [unchecked_rule("a", "1 +"), rule("b", "true"), unchecked_rule("c", "(x")]

    with pytest.raises(SpecError) as info:
        CompiledRules.compile(rules)

    assert [e.field for e in info.value.errors] == ["rules[0].when", "rules[2].when"]


def test_compile_rejects_duplicate_rule_names() -> None:
    with pytest.raises(SpecError) as info:
        CompiledRules.compile([rule("same", "true"), rule("same", "false")])

    assert [e.field for e in info.value.errors] == ["rules[1].name"]


def test_runtime_error_skip_continues_with_next_rule() -> None:
    rules = CompiledRules.compile(
        [
            rule("needs_income", "features.income < 1000", "decline", "LOW_INCOME"),
            rule("all", "true"),
        ],
        on_error="skip",
    )

    result = rules.evaluate(activation({"amount": 10}))

    assert result.hit == RuleHit("all", "review", "R00")
    assert not result.failed
    (error,) = result.errors
    assert (error.index, error.name) == (0, "needs_income")
    assert "income" in error.message


def test_runtime_error_fallback_stops_and_reports() -> None:
    rules = CompiledRules.compile(
        [rule("needs_income", "features.income < 1000"), rule("all", "true")],
        on_error="fallback",
    )

    result = rules.evaluate(activation({"amount": 10}))

    assert result.failed
    assert result.hit is None
    assert [e.name for e in result.errors] == ["needs_income"]


def test_runtime_type_mismatch_is_an_error_not_a_crash() -> None:
    rules = CompiledRules.compile([rule("amount", "features.amount > 100")])

    result = rules.evaluate(activation({"amount": "lots"}))

    assert result.hit is None
    (error,) = result.errors
    assert error.message.startswith("TypeError")


def test_non_bool_result_is_an_error() -> None:
    rules = CompiledRules.compile([rule("amount_only", "features.amount")], on_error="fallback")

    result = rules.evaluate(activation({"amount": 3}))

    assert result.failed
    assert "expected a bool result, got int 3" in result.errors[0].message


def test_features_with_nulls_can_be_tested_explicitly() -> None:
    rules = CompiledRules.compile(
        [rule("no_income", "features.income == null", "review", "MISSING_INCOME")]
    )

    assert rules.evaluate(activation({"income": None})).hit is not None
    assert rules.evaluate(activation({"income": 2500})).hit is None


def test_features_with_nulls_in_comparison_is_an_error() -> None:
    rules = CompiledRules.compile([rule("low_income", "features.income < 1000")])

    result = rules.evaluate(activation({"income": None}))

    assert result.hit is None
    assert len(result.errors) == 1


def test_has_macro_guards_optional_features() -> None:
    rules = CompiledRules.compile(
        [rule("low_income", "has(features.income) && features.income < 1000")]
    )

    result = rules.evaluate(activation({}))

    assert result.hit is None
    assert result.errors == ()


def test_int_and_double_compare_without_conversion() -> None:
    rules = CompiledRules.compile([rule("high", "features.amount > 1.5")])

    assert rules.evaluate(activation({"amount": 2})).hit is not None


def test_compile_rejects_unknown_on_error() -> None:
    with pytest.raises(SpecError, match="on_error"):
        CompiledRules.compile([], on_error="ignore")  # type: ignore[arg-type]


def test_empty_rules_never_hit() -> None:
    rules = CompiledRules.compile([])

    assert len(rules) == 0
    assert rules.evaluate(activation()).hit is None


def test_unconvertible_activation_is_one_error_not_a_crash() -> None:
    rules = CompiledRules.compile([rule("all", "true")], on_error="fallback")

    result = rules.evaluate(activation({"blob": object()}))

    assert result.failed
    assert result.hit is None
    assert [(e.index, e.name) for e in result.errors] == [(-1, "<activation>")]
