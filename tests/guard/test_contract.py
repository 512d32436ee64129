"""The input contract: every rule in reject and flag mode, coercion, unknown and personal fields."""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bastion.errors import InvalidInput
from bastion.guard.contract import (
    POLICY_RULES,
    Action,
    ContractPolicy,
    ContractResult,
    InputContract,
    Violation,
    enforce,
)
from bastion.registry.signature import ColumnKind, ColumnSignature, InputSignature

SIGNATURE = InputSignature(
    columns=[
        # range with the default 10 % tolerance: [18 - 7.2, 90 + 7.2] = [10.8, 97.2]
        ColumnSignature(name="age", kind="numeric", dtype="int64", min=18, max=90),
        ColumnSignature(
            name="income", kind="numeric", dtype="float64", nullable=True, min=0, max=200_000
        ),
        ColumnSignature(
            name="channel", kind="categorical", dtype="category", categories=["web", "branch"]
        ),
        ColumnSignature(name="grade", kind="categorical", dtype="int64", categories=[1, 2, 3]),
        ColumnSignature(name="member", kind="boolean", dtype="bool"),
        # text limit: 2 x 20 = 40 characters
        ColumnSignature(name="note", kind="text", dtype="str", max_length=20),
    ]
)
VALID: dict[str, Any] = {
    "age": 40,
    "income": 52_000.0,
    "channel": "web",
    "grade": 2,
    "member": True,
    "note": "a new car",
}


def contract(personal: frozenset[str] = frozenset(), **policy: Any) -> InputContract:
    return InputContract(SIGNATURE, ContractPolicy(**policy), personal)


def check(instance: dict[str, Any], **policy: Any) -> ContractResult:
    return contract(**policy).check(instance)


def only(result: ContractResult) -> Violation:
    assert len(result.violations) == 1, result.violations
    return result.violations[0]


def with_(**changes: Any) -> dict[str, Any]:
    return {**VALID, **changes}


def test_check_valid_instance_passes_unchanged() -> None:
    result = check(VALID)

    assert result.violations == ()
    assert result.row == VALID
    assert list(result.row) == SIGNATURE.names


# -- required ------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["reject", "flag"])
def test_required_missing_field_is_reported_with_the_policy_action(action: Action) -> None:
    instance = {k: v for k, v in VALID.items() if k != "age"}

    result = check(instance, required=action)

    violation = only(result)
    assert (violation.field, violation.rule, violation.action) == ("age", "required", action)
    assert result.row["age"] is None
    assert result.rejected is (action == "reject")


def test_required_missing_field_is_reported_even_when_nullable() -> None:
    instance = {k: v for k, v in VALID.items() if k != "income"}

    assert only(check(instance)).rule == "required"


def test_required_null_is_allowed_for_a_nullable_column() -> None:
    result = check(with_(income=None))

    assert result.violations == ()
    assert result.row["income"] is None


def test_required_null_is_a_violation_for_a_non_nullable_column() -> None:
    violation = only(check(with_(channel=None)))

    assert (violation.field, violation.rule) == ("channel", "required")
    assert "cannot be null" in violation.expected


# -- type ----------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["reject", "flag"])
def test_type_string_for_a_number_is_reported_and_never_reaches_the_model(action: Action) -> None:
    result = check(with_(age="forty"), type=action)

    violation = only(result)
    assert (violation.rule, violation.action, violation.value) == ("type", action, "forty")
    assert result.row["age"] is None


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400])
def test_type_nan_infinity_and_huge_numbers_are_type_violations(value: float) -> None:
    violation = only(check(with_(income=value)))

    assert (violation.field, violation.rule) == ("income", "type")
    assert violation.finding()["value"] in ("NaN", "Infinity", "-Infinity", 10**400)


def test_type_bool_is_not_a_number() -> None:
    assert only(check(with_(age=True))).rule == "type"


@pytest.mark.parametrize("value", [1, "true", "yes"])
def test_type_only_true_and_false_are_booleans(value: Any) -> None:
    assert only(check(with_(member=value))).rule == "type"


def test_type_text_must_be_a_string() -> None:
    assert only(check(with_(note=123))).rule == "type"


def test_type_category_must_have_the_type_of_the_categories() -> None:
    assert only(check(with_(channel=1))).expected == "a string"
    assert only(check(with_(grade="2"))).expected == "a finite number"


@pytest.mark.parametrize("value", [[1, 2], {"a": 1}])
def test_type_arrays_and_objects_are_type_violations(value: Any) -> None:
    assert only(check(with_(age=value))).rule == "type"


def test_type_numpy_scalars_are_plain_values() -> None:
    result = check(with_(age=np.int64(40), member=np.bool_(True)))

    assert result.violations == ()
    assert result.row["age"] == 40
    assert type(result.row["age"]) is int


# -- range ---------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["reject", "flag"])
def test_range_value_outside_the_widened_training_range_is_reported(action: Action) -> None:
    result = check(with_(age=98), range=action)

    violation = only(result)
    assert (violation.rule, violation.action, violation.value) == ("range", action, 98)
    assert violation.expected == "a number in [10.8, 97.2]"
    assert result.row["age"] == 98  # a flagged out-of-range value still reaches the model


@pytest.mark.parametrize("age", [10.8, 11, 18, 90, 97, 97.2])
def test_range_tolerance_widens_the_training_range(age: float) -> None:
    assert check(with_(age=age)).violations == ()


def test_range_tolerance_zero_keeps_the_training_range() -> None:
    assert check(with_(age=90), range_tolerance=0).violations == ()
    assert only(check(with_(age=91), range_tolerance=0)).rule == "range"


def test_range_is_not_checked_without_a_training_range() -> None:
    bare = InputSignature(columns=[ColumnSignature(name="x", kind="numeric", dtype="float64")])

    assert InputContract(bare, ContractPolicy()).check({"x": 1e300}).violations == ()


# -- category ------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["reject", "flag"])
def test_category_unknown_value_is_reported(action: Action) -> None:
    result = check(with_(channel="app"), category=action)

    violation = only(result)
    assert (violation.rule, violation.action, violation.value) == ("category", action, "app")
    assert violation.expected == "one of web, branch"
    assert result.row["channel"] == "app"


def test_category_numbers_compare_by_value() -> None:
    assert check(with_(grade=2.0)).violations == ()
    assert only(check(with_(grade=4))).rule == "category"


# -- text length ---------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["reject", "flag"])
def test_text_length_reports_the_length_never_the_text(action: Action) -> None:
    note = "x" * 41

    violation = only(check(with_(note=note), text_length=action))

    assert (violation.rule, violation.action, violation.value) == ("text_length", action, 41)
    assert violation.expected == "at most 40 characters"
    assert note not in violation.message()


def test_text_length_allows_twice_the_longest_training_text() -> None:
    assert check(with_(note="x" * 40)).violations == ()


def test_text_length_override_raises_the_limit_but_never_lowers_it() -> None:
    assert check(with_(note="x" * 100), max_text_length=100).violations == ()
    assert check(with_(note="x" * 40), max_text_length=10).violations == ()


# -- coercion ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "sent", "model_sees"),
    [
        ("age", "42", 42),
        ("age", " 42 ", 42),
        ("income", "12.5", 12.5),
        ("income", "1e3", 1000.0),
        ("member", "true", True),
        ("member", "False", False),
        ("grade", "3", 3),
    ],
)
def test_coerce_turns_safe_strings_into_values(field: str, sent: str, model_sees: Any) -> None:
    result = check(with_(**{field: sent}), coerce=True)

    assert result.violations == ()
    assert result.row[field] == model_sees
    assert type(result.row[field]) is type(model_sees)


def test_coerce_turns_integers_into_string_categories() -> None:
    signature = InputSignature(
        columns=[
            ColumnSignature(name="zone", kind="categorical", dtype="str", categories=["1", "2"])
        ]
    )
    lenient = InputContract(signature, ContractPolicy(coerce=True))

    assert lenient.check({"zone": 2}).row == {"zone": "2"}
    assert only(lenient.check({"zone": 2.0})).rule == "type"  # 2.0 -> "2" would guess


@pytest.mark.parametrize(
    ("field", "sent"),
    [
        ("age", "forty"),
        ("age", "1_000"),
        ("age", "0x10"),
        ("age", "\u0661\u0662"),  # Arabic-Indic digits: only ASCII numbers are coerced
        ("income", "nan"),
        ("income", "inf"),
        ("income", "1e999"),
        ("income", ""),
        ("member", "1"),
        ("member", 1),
        ("age", True),
        ("note", 42),
    ],
)
def test_coerce_refuses_lossy_or_ambiguous_values(field: str, sent: Any) -> None:
    assert only(check(with_(**{field: sent}), coerce=True)).rule == "type"


def test_coerce_is_off_by_default() -> None:
    assert only(check(with_(age="42"))).rule == "type"


def test_coerced_value_is_then_range_checked() -> None:
    violation = only(check(with_(age="120"), coerce=True))

    assert (violation.rule, violation.value) == ("range", "120")


# -- unknown fields ------------------------------------------------------------------------


def test_unknown_fields_are_dropped_by_default() -> None:
    result = check(with_(favourite_colour="blue"))

    assert result.violations == ()
    assert "favourite_colour" not in result.row


def test_unknown_fields_reject_reports_the_field_but_not_its_value() -> None:
    violation = only(check(with_(email="jane@example.com"), unknown_fields="reject"))

    assert (violation.field, violation.rule, violation.action) == (
        "email",
        "unknown_field",
        "reject",
    )
    assert "value" not in violation.finding()
    assert "jane@example.com" not in violation.message()


def test_unknown_fields_reject_allows_declared_extra_fields() -> None:
    strict = InputContract(
        SIGNATURE, ContractPolicy(unknown_fields="reject"), extra_fields=frozenset({"memo"})
    )

    result = strict.check(with_(memo="scanned for personal data"))

    assert result.violations == ()
    assert "memo" not in result.row


# -- personal data -------------------------------------------------------------------------

SECRET = "jane.doe@example.com"


def test_personal_field_value_is_never_in_the_error() -> None:
    strict = contract(personal=frozenset({"income", "age"}), range="reject")
    results = strict.check_many([with_(income=SECRET, age=123_456_789)])

    with pytest.raises(InvalidInput) as caught:
        enforce(results)

    text = str(caught.value) + repr(caught.value.errors)
    assert SECRET not in text
    assert "123456789" not in text
    assert {e.field for e in caught.value.errors} == {"instances[0].income", "instances[0].age"}
    assert all(v.value is None and v.withheld for v in results[0].violations)


def test_personal_field_value_is_never_in_the_findings() -> None:
    lenient = contract(personal=frozenset({"income"}), type="flag")

    [findings] = enforce(lenient.check_many([with_(income=SECRET)]))

    assert findings == [
        {"field": "income", "rule": "type", "expected": "a finite number", "action": "flag"}
    ]
    assert SECRET not in repr(findings)


@given(secret=st.text(min_size=1, max_size=30).map(lambda s: f"SECRET-{s}"))
def test_personal_field_never_echoes_any_value(secret: str) -> None:
    personal = InputContract(SIGNATURE, ContractPolicy(), frozenset(SIGNATURE.names))
    instance = dict.fromkeys(SIGNATURE.names, secret)

    results = personal.check_many([instance])

    with pytest.raises(InvalidInput) as caught:
        enforce(results)
    assert secret not in str(caught.value) + repr(caught.value.errors)
    assert secret not in repr([v.finding() for v in results[0].violations])


# -- findings, paths and the 422 -----------------------------------------------------------


def test_enforce_lists_every_rejecting_violation_of_every_instance_at_once() -> None:
    instances = [
        with_(age="old", channel="app", member=None),
        VALID,
        {"income": -50_000.0, "channel": "web", "grade": 9, "member": False, "note": "x" * 50},
    ]
    results = contract(range="reject").check_many(instances)

    with pytest.raises(InvalidInput) as caught:
        enforce(results)

    assert caught.value.status == 422
    assert [(e.field, e.message.split(":")[0]) for e in caught.value.errors] == [
        ("instances[0].age", "type"),
        ("instances[0].channel", "category"),
        ("instances[0].member", "required"),
        ("instances[2].age", "required"),
        ("instances[2].income", "range"),
        ("instances[2].grade", "category"),
        ("instances[2].note", "text_length"),
    ]
    assert "7 input contract violation(s)" in caught.value.message


def test_enforce_message_names_rule_expected_and_value() -> None:
    with pytest.raises(InvalidInput) as caught:
        enforce(contract().check_many([with_(channel="app")], prefix="features"))

    [error] = caught.value.errors
    assert error.field == "features.channel"
    assert error.message == "category: expected one of web, branch, got 'app'"
    assert error.expected == "one of web, branch"


def test_enforce_returns_flagged_findings_per_instance() -> None:
    results = contract().check_many([VALID, with_(age=120)])

    assert enforce(results) == [
        [],
        [
            {
                "field": "age",
                "rule": "range",
                "expected": "a number in [10.8, 97.2]",
                "action": "flag",
                "value": 120,
            }
        ],
    ]


def test_enforce_ignores_flags_when_something_rejects() -> None:
    results = contract().check_many([with_(age=120, channel="app")])

    with pytest.raises(InvalidInput) as caught:
        enforce(results)

    assert [e.field for e in caught.value.errors] == ["instances[0].channel"]


def test_check_many_names_a_non_object_instance() -> None:
    results = contract().check_many([VALID, [1, 2, 3]])

    with pytest.raises(InvalidInput) as caught:
        enforce(results)

    [error] = caught.value.errors
    assert error.field == "instances[1]"
    assert "an object of feature values" in error.message


def test_check_many_uses_the_prefix_in_paths() -> None:
    results = contract().check_many([VALID, VALID], prefix="features")

    assert [r.where for r in results] == ["features[0]", "features[1]"]


def test_finding_includes_the_value_shortened() -> None:
    [finding] = check(with_(channel="y" * 500), category="flag").findings()

    assert isinstance(finding["value"], str)
    assert len(finding["value"]) == 64


# -- policy --------------------------------------------------------------------------------


def test_policy_defaults_reject_all_but_range() -> None:
    policy = ContractPolicy()

    actions = [policy.action(rule) for rule in POLICY_RULES]
    assert POLICY_RULES == ("required", "type", "range", "category", "text_length")
    assert actions == ["reject", "reject", "flag", "reject", "reject"]
    assert (policy.range_tolerance, policy.coerce, policy.unknown_fields) == (0.1, False, "ignore")


@pytest.mark.parametrize(
    "bad",
    [{"range": "warn"}, {"range_tolerance": -0.1}, {"max_text_length": 0}, {"colour": "red"}],
)
def test_policy_refuses_bad_settings(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        ContractPolicy(**bad)


# -- property: values inside the signature always pass ------------------------------------

_finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)
_KINDS: list[ColumnKind] = ["numeric", "categorical", "boolean", "text"]


@st.composite
def signed_instances(draw: st.DrawFn) -> tuple[InputSignature, dict[str, Any]]:
    """A random signature and an instance whose every value lies inside it."""
    columns: list[ColumnSignature] = []
    instance: dict[str, Any] = {}
    for index in range(draw(st.integers(1, 6))):
        name = f"c{index}"
        kind = draw(st.sampled_from(_KINDS))
        nullable = draw(st.booleans())
        value: Any
        if kind == "numeric":
            low = draw(_finite)
            high = draw(st.floats(min_value=low, max_value=1e6))
            column = ColumnSignature(name=name, kind=kind, dtype="float64", min=low, max=high)
            inside = st.floats(min_value=low, max_value=high)
            if math.ceil(low) <= math.floor(high):
                inside |= st.integers(math.ceil(low), math.floor(high))
            value = draw(inside)
        elif kind == "categorical":
            labels = st.text(max_size=8) | st.integers(-100, 100)
            categories = draw(st.lists(labels, min_size=1, max_size=6, unique=True))
            column = ColumnSignature(name=name, kind=kind, dtype="object", categories=categories)
            value = draw(st.sampled_from(categories))
        elif kind == "boolean":
            column = ColumnSignature(name=name, kind=kind, dtype="bool")
            value = draw(st.booleans())
        else:
            longest = draw(st.integers(0, 40))
            column = ColumnSignature(name=name, kind=kind, dtype="str", max_length=longest)
            value = draw(st.text(max_size=longest))
        if nullable and draw(st.booleans()):
            value = None
        columns.append(column.model_copy(update={"nullable": nullable}))
        instance[name] = value
    return InputSignature(columns=columns), instance


@given(
    case=signed_instances(),
    tolerance=st.floats(min_value=0, max_value=2),
    coerce=st.booleans(),
    unknown=st.sampled_from(["ignore", "reject"]),
)
def test_any_instance_inside_the_signature_passes(
    case: tuple[InputSignature, dict[str, Any]],
    tolerance: float,
    coerce: bool,
    unknown: Literal["ignore", "reject"],
) -> None:
    signature, instance = case
    policy = ContractPolicy(range_tolerance=tolerance, coerce=coerce, unknown_fields=unknown)

    result = InputContract(signature, policy).check(instance)

    assert result.violations == ()
    assert result.row == instance
    assert enforce([result]) == [[]]
