"""Ordered decision rules written in CEL, compiled once and evaluated per request.

Each rule is a CEL expression over three variables: ``features`` (the request's fields),
``prediction`` (``score``, ``label``, ``probabilities``) and ``request`` (``deployment``,
``subject_present``, ...). Rules run in order and the first one that is true decides.

A rule that fails at run time (a missing key, a type mismatch, a non-bool result) never
crashes the caller: it is recorded in the `RuleEvaluation` and, depending on ``on_error``,
either skipped (``skip``) or stops evaluation so the caller applies its fallback
(``fallback``). CEL is evaluated by the `cel` library (Rust); there is no Python ``eval``.

>>> rules = CompiledRules.compile(
...     [RuleSpec(name="big", when="features.amount > 1000", outcome="review", reason="R01")]
... )
>>> rules.evaluate({"features": {"amount": 5000}, "prediction": {}, "request": {}}).hit
RuleHit(name='big', outcome='review', reason='R01')
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cel
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bastion.errors import FieldError, SpecError

OnError = Literal["skip", "fallback"]

#: the built-in outcomes; any other label must match `OUTCOME_PATTERN`
BUILTIN_OUTCOMES = ("approve", "review", "decline")
OUTCOME_PATTERN = r"^[a-z][a-z0-9_]*$"
#: the CEL parser's position marker, e.g. ``<input>:1:18:``
_POSITION = re.compile(r"<input>:(\d+):(\d+):\s*(.*)", re.DOTALL)


class RuleSpec(BaseModel):
    """One rule of a deployment's policy: when ``when`` is true, decide ``outcome``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$",
        description="A unique name for the rule, recorded with every decision it makes.",
    )
    when: str = Field(
        min_length=1,
        description="A CEL expression over `features`, `prediction` and `request` that "
        "must evaluate to a bool.",
    )
    outcome: str = Field(
        pattern=OUTCOME_PATTERN,
        description="`approve`, `review`, `decline`, or a custom label (lower case, "
        "digits and underscores).",
    )
    reason: str = Field(
        min_length=1, max_length=64, description="The reason code recorded when the rule fires."
    )

    @field_validator("when")
    @classmethod
    def _compiles(cls, value: str) -> str:
        # Checked where the spec is parsed, so `bastion spec check` names the rule's line.
        check_expression(value)
        return value


def check_expression(source: str) -> None:
    """Raise ValueError with the CEL position when `source` does not compile."""
    try:
        cel.compile(source)
    except Exception as exc:  # the cel library raises ValueError; be safe at the edge
        raise ValueError(compile_error(0, source, exc).message) from None


@dataclass(frozen=True)
class RuleHit:
    """The rule that decided: its name, outcome and reason code."""

    name: str
    outcome: str
    reason: str


@dataclass(frozen=True)
class RuleError:
    """A rule that could not be evaluated for this request, and why."""

    index: int
    name: str
    message: str


@dataclass(frozen=True)
class RuleEvaluation:
    """What evaluating the rules produced for one request.

    ``hit`` is the first rule that was true (None if none was). ``errors`` lists every rule
    that failed to evaluate. ``failed`` is True when a rule errored under
    ``on_error="fallback"``: evaluation stopped there and the caller applies its fallback.
    """

    hit: RuleHit | None
    errors: tuple[RuleError, ...] = ()
    failed: bool = False


@dataclass(frozen=True)
class _Compiled:
    spec: RuleSpec
    program: cel.Program


class CompiledRules:
    """An ordered list of rules whose expressions are compiled once, at load time."""

    def __init__(self, compiled: Sequence[_Compiled], on_error: OnError) -> None:
        self._rules = tuple(compiled)
        self.on_error: OnError = on_error

    @classmethod
    def compile(cls, rules: Sequence[RuleSpec], *, on_error: OnError = "skip") -> CompiledRules:
        """Compile every rule; raise `SpecError` naming each rule that does not compile.

        Errors are collected over all rules (``rules[i].when`` with the CEL message and
        its line and column; ``rules[i].name`` for a duplicate name).
        """
        if on_error not in ("skip", "fallback"):
            raise SpecError(
                f"on_error must be one of skip, fallback, got {on_error!r}",
                [FieldError("on_error", "unknown setting", expected="skip | fallback")],
            )
        errors: list[FieldError] = []
        compiled: list[_Compiled] = []
        seen: set[str] = set()
        for i, rule in enumerate(rules):
            if rule.name in seen:
                errors.append(
                    FieldError(
                        f"rules[{i}].name",
                        f"duplicate rule name {rule.name!r}",
                        expected="a name used by one rule only",
                        value=rule.name,
                    )
                )
            seen.add(rule.name)
            try:
                program = cel.compile(rule.when)
            except Exception as exc:  # the cel library raises ValueError; be safe at the edge
                errors.append(compile_error(i, rule.when, exc))
                continue
            compiled.append(_Compiled(rule, program))
        if errors:
            lines = "; ".join(f"{e.field}: {e.message}" for e in errors)
            raise SpecError(f"invalid policy rules: {lines}", errors)
        return cls(compiled, on_error)

    def __len__(self) -> int:
        return len(self._rules)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.spec.name for c in self._rules)

    def evaluate(self, activation: Mapping[str, Any]) -> RuleEvaluation:
        """Evaluate the rules in order over ``activation`` and return the first that is true.

        ``activation`` maps ``features``, ``prediction`` and ``request`` to plain Python
        values (dicts, lists, str, int, float, bool, None). If a value cannot be converted
        to CEL, one error with index -1 is recorded and no rule runs.
        """
        try:
            # converted to CEL values once per request, not once per rule
            context = cel.Context(variables=dict(activation))
        except Exception as exc:  # a value CEL cannot represent: no rule can run
            error = RuleError(-1, "<activation>", runtime_message(exc))
            return RuleEvaluation(None, (error,), failed=self.on_error == "fallback")
        errors: list[RuleError] = []
        for i, rule in enumerate(self._rules):
            try:
                result = rule.program.execute(context)
            except Exception as exc:  # any run-time CEL failure is a rule error, not a crash
                message = runtime_message(exc)
            else:
                if result is True:
                    spec = rule.spec
                    return RuleEvaluation(
                        RuleHit(spec.name, spec.outcome, spec.reason), tuple(errors)
                    )
                if result is False:
                    continue
                message = f"expected a bool result, got {type(result).__name__} {result!r}"
            errors.append(RuleError(i, rule.spec.name, message))
            if self.on_error == "fallback":
                return RuleEvaluation(None, tuple(errors), failed=True)
        return RuleEvaluation(None, tuple(errors))


def compile_error(index: int, source: str, exc: Exception) -> FieldError:
    """The CEL compiler's complaint about ``rules[index].when`` as a field error with its
    line and column (shared by every place that compiles CEL: rules, alerts)."""
    text = str(exc)
    match = _POSITION.search(text)
    if match:
        line, column, detail = match.group(1), match.group(2), match.group(3)
        first = detail.splitlines()[0].strip() if detail else "syntax error"
        message = f"does not compile at line {line}, column {column}: {first}"
    else:
        message = f"does not compile: {text.splitlines()[0] if text else type(exc).__name__}"
    return FieldError(
        f"rules[{index}].when",
        message,
        expected="a CEL expression",
        rule="cel",
        value=source,
    )


def runtime_message(exc: Exception) -> str:
    """A CEL run-time failure as one short line, without the values involved."""
    if isinstance(exc, KeyError):
        return f"no such key: {exc.args[0] if exc.args else exc}"
    text = str(exc).split(". ")[0].strip() or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
