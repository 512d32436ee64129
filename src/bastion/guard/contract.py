"""The input contract: request instances checked against the model's input signature.

Each deployment derives an `InputContract` from the registered `InputSignature` and the
``guard.contract`` section of its spec (`ContractPolicy`). Every field of every instance is
checked against five rules; per rule the policy says whether a violation rejects the
request (422 listing every violation) or only flags it (the request is served and the
findings travel with the response, the decision record and the metrics):

============ ============================================================================
rule         fires when
============ ============================================================================
required     the field is absent, or null while the column is not nullable
type         the value's JSON type does not fit the column's kind (numeric: a finite
             number, never a boolean; boolean: true/false; text: a string; categorical:
             the type of its categories). NaN and ±Infinity are type violations.
range        a number lies outside the training ``[min, max]`` widened on each side by
             ``range_tolerance * (max - min)``
category     a categorical value is not one of the signature's categories
text_length  a text value is longer than ``max(2 * signature max_length,
             max_text_length)`` characters
============ ============================================================================

Fields the signature does not name are dropped (``unknown_fields: ignore``) or rejected
with rule ``unknown_field`` (``unknown_fields: reject``); fields listed in ``extra_fields``
(for instance a free-text note that is scanned for personal data but not fed to the model)
are neither checked nor reported. With ``coerce: true`` these lossless coercions apply
before the rules, and no others: a numeric string (``"12"``, ``"-12.5"``, ``"1e3"``,
surrounding blanks allowed) becomes a number for a numeric column (or a category of
numbers); ``"true"``/``"false"`` (any case) becomes a boolean; an integer becomes its
decimal string for a column whose categories are strings.

What the model sees (`ContractResult.row`): exactly the signature's columns, in signature
order; a flagged ``required`` or ``type`` violation becomes a missing value (None), so a
served request never hands the model a value of the wrong type. Flagged ``range``,
``category`` and ``text_length`` violations pass the value through unchanged.

Personal data is never echoed: for a field in ``personal_fields`` (and for unknown fields,
whose content nobody declared) `Violation.value` is None and neither the 422 message nor
the finding contains the value. Pass every field that may carry personal data, declared
personal fields and PII-scanned text fields alike. Other values are echoed in a JSON-safe,
shortened form; a ``text_length`` violation reports the length, never the text.

Request-path integration (done in ``serving/``; this module knows nothing of HTTP)::

    contract = InputContract(version.input_signature, spec_guard.contract, personal_fields)
    results = contract.check_many(instances, prefix="instances")  # or "features", "inputs"
    findings = enforce(results)  # raises InvalidInput (422) listing every rejection
    rows = [result.row for result in results]  # what the model scores
    # findings[i]: the flagged findings of instance i, for its response `guard` block,
    # its decision record and the metrics (one count per rule and action)

`InputContract` validates its inputs once and is then immutable, so one instance can be
shared by every request of a deployment.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NotRequired, TypedDict

import numpy as np

from bastion.errors import FieldError, InvalidInput
from bastion.guard.policy import POLICY_RULES as POLICY_RULES
from bastion.guard.policy import Action as Action
from bastion.guard.policy import ContractPolicy as ContractPolicy
from bastion.guard.policy import Rule as Rule
from bastion.registry.signature import ColumnSignature, InputSignature

_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)
_MAX_NUMERIC_STRING = 64  # longer strings are never parsed as numbers
_MAX_SHOWN = 64  # characters of a string value echoed in a message or finding
_MAX_SHOWN_CATEGORIES = 10
_ERRORS_IN_MESSAGE = 5


class Finding(TypedDict):
    """A violation as the response's ``guard`` block and the decision record carry it."""

    field: str
    rule: Rule
    expected: str
    action: Action
    value: NotRequired[Any]


@dataclass(frozen=True, slots=True)
class Violation:
    """One field breaking one rule.

    `value` is a JSON-safe rendering of what was sent (strings shortened, NaN and
    Infinity as strings, the length for ``text_length``, None for a missing field); None
    and `withheld` when the field is personal data or unknown. `got` describes the value
    for people (``'abc'``, ``null``, ``nothing (the field is missing)``).
    """

    field: str
    rule: Rule
    expected: str
    value: Any
    action: Action
    withheld: bool = False
    got: str = ""

    def finding(self) -> Finding:
        out: Finding = {
            "field": self.field,
            "rule": self.rule,
            "expected": self.expected,
            "action": self.action,
        }
        if not self.withheld:
            out["value"] = self.value
        return out

    def message(self) -> str:
        """``range: expected a number in [11, 97], got 130`` (the value only if shown)."""
        got = self.got or ("a value that is not shown" if self.withheld else _describe(self.value))
        return f"{self.rule}: expected {self.expected}, got {got}"


@dataclass(frozen=True, slots=True)
class ContractResult:
    """One instance after the contract: the model row and every violation found.

    `where` is the instance's path in the request (``features``, ``instances[3]``).
    """

    where: str
    row: dict[str, Any]
    violations: tuple[Violation, ...] = ()

    @property
    def rejected(self) -> bool:
        return any(v.action == "reject" for v in self.violations)

    def findings(self) -> list[Finding]:
        """The flagged violations, for the response and the decision record."""
        return [v.finding() for v in self.violations if v.action == "flag"]

    def field_errors(self) -> list[FieldError]:
        """One `FieldError` per rejecting violation, with its full field path."""
        return [
            FieldError(
                f"{self.where}.{v.field}" if v.field else self.where,
                v.message(),
                v.expected,
                rule=v.rule,
                value=None if v.withheld else (v.got or _describe(v.value)),
            )
            for v in self.violations
            if v.action == "reject"
        ]


def enforce(results: Sequence[ContractResult]) -> list[list[Finding]]:
    """Raise `InvalidInput` listing every rejecting violation, else return the flagged ones.

    The exception has one `FieldError` per rejecting violation across all instances (field
    path, message naming the rule, what was expected and, unless withheld, the value), so
    a 422 lists everything at once. Without rejections, returns per instance the list of
    its flagged findings (empty for clean instances).
    """
    errors = [error for result in results for error in result.field_errors()]
    if errors:
        shown = "; ".join(f"{e.field} {e.message}" for e in errors[:_ERRORS_IN_MESSAGE])
        more = (
            f" (and {len(errors) - _ERRORS_IN_MESSAGE} more)"
            if len(errors) > _ERRORS_IN_MESSAGE
            else ""
        )
        raise InvalidInput(
            f"{len(errors)} input contract violation(s): {shown}{more}", errors=errors
        )
    return [result.findings() for result in results]


class InputContract:
    """The checks one deployment applies to every instance, built once from its signature.

    Parameters
    ----------
    signature : InputSignature
        The registered model version's input signature.
    policy : ContractPolicy
        The spec's ``guard.contract`` section.
    personal_fields : frozenset of str
        Fields holding personal data: their values are never echoed.
    extra_fields : frozenset of str
        Fields the request may carry besides the model's columns (e.g. a note scanned for
        personal data): neither checked, nor put in the row, nor reported as unknown.

    Example
    -------
    >>> from bastion.registry.signature import ColumnSignature, InputSignature
    >>> age = ColumnSignature(name="age", kind="numeric", dtype="int64", min=18, max=90)
    >>> contract = InputContract(InputSignature(columns=[age]), ContractPolicy(coerce=True))
    >>> result = contract.check({"age": "42"})
    >>> result.row, result.violations
    ({'age': 42}, ())
    >>> contract.check({"age": 200}).findings()[0]["rule"]
    'range'
    """

    def __init__(
        self,
        signature: InputSignature,
        policy: ContractPolicy,
        personal_fields: frozenset[str] = frozenset(),
        *,
        extra_fields: frozenset[str] = frozenset(),
    ) -> None:
        self.signature = signature
        self.policy = policy
        self.personal_fields = frozenset(personal_fields)
        self.extra_fields = frozenset(extra_fields)
        self._columns = [
            _Column(c, policy, c.name in self.personal_fields) for c in signature.columns
        ]
        self._names = frozenset(c.name for c in signature.columns)

    def check(self, instance: object, *, where: str = "features") -> ContractResult:
        """Check one instance (a mapping of field name to JSON value); never raises."""
        if not isinstance(instance, Mapping):
            problem = Violation(
                "", "type", "an object of feature values", None, "reject", got=_describe(instance)
            )
            return ContractResult(where, {}, (problem,))
        violations: list[Violation] = []
        row: dict[str, Any] = {}
        for column in self._columns:
            row[column.name] = column.check(instance, violations)
        if self.policy.unknown_fields == "reject":
            for key in instance:
                name = str(key)
                if name not in self._names and name not in self.extra_fields:
                    violations.append(
                        Violation(
                            _shorten(name),
                            "unknown_field",
                            "a field of the model's input signature",
                            None,
                            "reject",
                            withheld=True,
                            got="a field the model does not use (value not shown)",
                        )
                    )
        return ContractResult(where, row, tuple(violations))

    def check_many(
        self, instances: Sequence[object], *, prefix: str = "instances"
    ) -> list[ContractResult]:
        """Check every instance; paths are ``prefix[i]``, or just ``features`` for the
        single instance of a ``features`` request."""
        single = len(instances) == 1 and prefix == "features"
        return [
            self.check(instance, where=prefix if single else f"{prefix}[{index}]")
            for index, instance in enumerate(instances)
        ]


# -- per-column checks -------------------------------------------------------------------

_ABSENT = object()  # a missing field, or a value no rule can use


class _Column:
    """One signature column's checks, with bounds and lookups computed once."""

    def __init__(self, column: ColumnSignature, policy: ContractPolicy, personal: bool) -> None:
        self.name = column.name
        self.kind = column.kind
        self.nullable = column.nullable
        self.personal = personal
        self.coerce = policy.coerce
        self.policy = policy
        self.low: float | None = None
        self.high: float | None = None
        if column.min is not None and column.max is not None:
            slack = policy.range_tolerance * (column.max - column.min)
            self.low, self.high = column.min - slack, column.max + slack
        self.categories = list(column.categories or [])
        self.category_keys = frozenset(_category_key(c) for c in self.categories)
        self.category_types = frozenset(key[0] for key in self.category_keys) or frozenset("ns")
        limits = [2 * column.max_length] if column.max_length is not None else []
        if policy.max_text_length is not None:
            limits.append(policy.max_text_length)
        self.text_limit = max(limits) if limits else None

    def check(self, instance: Mapping[str, Any], violations: list[Violation]) -> Any:
        """Append this column's violations; return the value the model row gets."""
        raw = instance.get(self.name, _ABSENT)
        if raw is _ABSENT or raw is None:
            if raw is _ABSENT or not self.nullable:
                got = "nothing (the field is missing)" if raw is _ABSENT else "null"
                expected = (
                    "a value or null" if self.nullable else "a value (this field cannot be null)"
                )
                violations.append(
                    Violation(self.name, "required", expected, None, self.policy.required, got=got)
                )
            return None
        value = raw.item() if isinstance(raw, np.generic) else raw
        typed = self._typed(value)
        if typed is _ABSENT:
            self._violate(violations, "type", self._type_expected(), value)
            return None
        if self.kind == "numeric" and self.low is not None and self.high is not None:
            if not self.low <= typed <= self.high:
                expected = f"a number in [{_number(self.low)}, {_number(self.high)}]"
                self._violate(violations, "range", expected, value)
        elif self.kind == "categorical" and self.category_keys:
            if _category_key(typed) not in self.category_keys:
                self._violate(violations, "category", self._category_expected(), value)
        elif self.kind == "text" and self.text_limit is not None and len(typed) > self.text_limit:
            expected = f"at most {self.text_limit} characters"
            self._violate(
                violations, "text_length", expected, len(typed), f"{len(typed)} characters"
            )
        return typed

    def _violate(
        self,
        violations: list[Violation],
        rule: Rule,
        expected: str,
        value: Any,
        got: str | None = None,
    ) -> None:
        action = self.policy.action(rule)
        if self.personal:
            got = "a value that is not shown (personal data)"
            violations.append(Violation(self.name, rule, expected, None, action, True, got))
        else:
            got = _describe(value) if got is None else got
            violations.append(
                Violation(self.name, rule, expected, _shown(value), action, False, got)
            )

    def _typed(self, value: Any) -> Any:
        """`value` as the model row gets it (coerced if allowed), or `_ABSENT` if unusable."""
        if self.kind == "numeric":
            if _is_number(value):
                return value
            return _parse_number(value) if self.coerce else _ABSENT
        if self.kind == "boolean":
            if isinstance(value, bool):
                return value
            return _parse_bool(value) if self.coerce else _ABSENT
        if self.kind == "text":
            return value if isinstance(value, str) else _ABSENT
        kind = _value_type(value)
        if kind is not None and kind in self.category_types:
            return value
        if not self.coerce:
            return _ABSENT
        if kind == "n" and isinstance(value, int) and "s" in self.category_types:
            return str(value)
        if isinstance(value, str) and "n" in self.category_types:
            return _parse_number(value)
        if isinstance(value, str) and "b" in self.category_types:
            return _parse_bool(value)
        return _ABSENT

    def _type_expected(self) -> str:
        if self.kind == "numeric":
            return "a finite number"
        if self.kind == "boolean":
            return "true or false"
        if self.kind == "text":
            return "a string"
        names = {"s": "a string", "n": "a finite number", "b": "true or false"}
        return " or ".join(names[t] for t in "snb" if t in self.category_types)

    def _category_expected(self) -> str:
        shown = ", ".join(str(c) for c in self.categories[:_MAX_SHOWN_CATEGORIES])
        if len(self.categories) > _MAX_SHOWN_CATEGORIES:
            shown += f", … ({len(self.categories)} in all)"
        return f"one of {shown}"


def _is_number(value: Any) -> bool:
    """A finite int or float (bool is not a number)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _parse_number(value: Any) -> Any:
    """``"12"`` → 12, ``" 12.5 "`` → 12.5; `_ABSENT` for anything else or non-finite."""
    if not isinstance(value, str) or len(value) > _MAX_NUMERIC_STRING:
        return _ABSENT
    text = value.strip()
    if not _NUMBER.fullmatch(text):
        return _ABSENT
    number: int | float = float(text) if any(c in text for c in ".eE") else int(text)
    return number if _is_number(number) else _ABSENT


def _parse_bool(value: Any) -> Any:
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "false"):
            return lowered == "true"
    return _ABSENT


def _value_type(value: Any) -> str | None:
    """``"s"``, ``"n"`` or ``"b"``: the category type a JSON value has, or None."""
    if isinstance(value, bool):
        return "b"
    if isinstance(value, str):
        return "s"
    return "n" if _is_number(value) else None


def _category_key(value: Any) -> tuple[str, Any]:
    """Comparable across int/float (1 == 1.0) but never across types ("1" != 1 != True)."""
    kind = _value_type(value)
    if kind == "n":
        return ("n", float(value))
    return (kind or "?", value)


def _number(x: float) -> str:
    return f"{x:.6g}"


def _shorten(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 1] + "…"


def _shown(value: Any) -> Any:
    """A JSON-safe, bounded rendering of a sent value for messages and findings."""
    if value is None or isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return value if math.isfinite(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, str):
        return _shorten(value)
    if isinstance(value, list | tuple):
        return f"<array of {len(value)}>"
    if isinstance(value, Mapping):
        return "<object>"
    return f"<{type(value).__name__}>"


def _describe(value: Any) -> str:
    """How a message names a sent value: ``'abc'``, ``12``, ``NaN``, ``an array``."""
    if isinstance(value, str):
        return repr(_shorten(value))
    if isinstance(value, list | tuple):
        return "an array"
    if isinstance(value, Mapping):
        return "an object"
    shown = _shown(value)
    if shown is None:
        return "null"
    if isinstance(shown, bool):
        return "true" if shown else "false"
    return str(shown)
