"""The decision policy of one deployment: rules, then bands, then the fallback.

`DecisionPolicy` is built once per deployment from its `PolicyConfig` (rules and the review
priority compiled once) and checked against the served model: score bands need a binary
classifier, value bands a regressor, and an overflow that decides by the nearest band needs
bands. Per row, `decide` evaluates over three CEL variables:

- ``features``: the request's fields, numbers as doubles (so ``5000`` and ``5000.0`` behave
  alike in a rule), NaN as null;
- ``prediction``: ``score``/``label``/``probabilities`` (classifiers) or ``value``
  (regressors), or null when the model failed or timed out;
- ``request``: ``deployment``, ``model`` (``name``, ``version``), ``subject_present``, ``api``.

The first rule that is true decides (source ``rule``). Otherwise the bands decide (source
``band``), or, without bands, the model's own label or value (source ``model``). When the
model gave no prediction, or a rule failed under ``on_rule_error: fallback``, and no rule
fired, the fallback outcome applies (source ``fallback``). Everything is evaluated by the
`cel` library; there is no Python ``eval``.

>>> from bastion.policy.config import PolicyConfig
>>> policy = DecisionPolicy(
...     PolicyConfig.model_validate(
...         {"rules": [{"name": "minor", "when": "features.age < 18", "outcome": "decline",
...                     "reason": "AGE"}],
...          "bands": {"approve_below": 0.2, "decline_at_or_above": 0.6}}),
...     task="classification", classes=[0, 1])
>>> policy.decide({"age": 30}, {"score": 0.4}, {}).outcome
'review'
>>> policy.decide({"age": 16}, {"score": 0.1}, {}).source
'rule'
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import cel

from bastion.errors import FieldError, SpecError
from bastion.policy.bands import ScoreBands, ValueBands
from bastion.policy.config import PolicyConfig
from bastion.policy.rules import CompiledRules, RuleError

Source = Literal["rule", "band", "fallback", "overflow", "model"]
#: outcomes a machine decided without a person; only these are sampled for exploration
AUTOMATIC_OUTCOMES = frozenset({"approve", "decline"})


@dataclass(frozen=True)
class PolicyResult:
    """How one row was decided.

    ``fallback`` is set when the model gave no prediction or the fallback outcome applied.
    """

    outcome: Any
    source: Source
    rule: str | None = None
    band: str | None = None
    reason: str | None = None
    rule_errors: tuple[RuleError, ...] = ()
    fallback: bool = False


def rule_features(row: Mapping[str, Any]) -> dict[str, Any]:
    """`row` as rules see it: numbers as doubles, NaN as null, other values unchanged."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, float):
            out[key] = None if math.isnan(value) else value
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = float(value)
        else:
            out[key] = value
    return out


def _check_bands(config: PolicyConfig, task: str, classes: Sequence[Any], where: str) -> None:
    """Bands that cannot apply to the served model fail start-up, naming the field."""
    errors: list[FieldError] = []
    if config.bands is not None and (task != "classification" or len(classes) != 2):
        kind = "a regressor" if task != "classification" else f"{len(classes)} classes"
        errors.append(
            FieldError(
                f"{where}.bands",
                f"score bands need a binary classifier, but the model has {kind}",
                expected="a classifier with 2 classes, or value_bands for a regressor",
            )
        )
    if config.value_bands is not None and task != "regression":
        errors.append(
            FieldError(
                f"{where}.value_bands",
                "value bands need a regressor, but the model is a classifier",
                expected="a regressor, or bands for a binary classifier",
            )
        )
    review = config.review
    if (
        review.capacity is not None
        and review.overflow == "nearest_band"
        and config.bands is None
        and config.value_bands is None
    ):
        errors.append(
            FieldError(
                f"{where}.review.overflow",
                "nearest_band needs bands or value_bands to decide a case the full queue "
                "cannot take",
                expected="bands, value_bands, or an outcome label",
            )
        )
    if errors:
        raise SpecError("; ".join(f"{e.field}: {e.message}" for e in errors), errors)


class DecisionPolicy:
    """One deployment's policy, compiled and checked against its model once.

    Parameters
    ----------
    config:
        The deployment's ``policy`` section.
    task, classes:
        The served model's task and class labels (for the band checks).
    where:
        The spec path of the section, for error messages (e.g. ``deployments.credit.policy``).
    """

    def __init__(
        self,
        config: PolicyConfig,
        *,
        task: str,
        classes: Sequence[Any],
        where: str = "policy",
    ) -> None:
        _check_bands(config, task, classes, where)
        try:
            self.rules = CompiledRules.compile(config.rules, on_error=config.on_rule_error)
        except SpecError as exc:
            errors = [
                FieldError(f"{where}.{e.field}", e.message, e.expected, rule=e.rule, value=e.value)
                for e in exc.errors
            ]
            raise SpecError(f"{where}: {exc.message}", errors) from None
        self.config = config
        self.version = config.resolved_version
        self.review = config.review
        self.score_bands: ScoreBands | None = config.bands
        self.value_bands = (
            ValueBands(bands=config.value_bands) if config.value_bands is not None else None
        )
        self._priority = (
            cel.compile(config.review.priority) if config.review.priority is not None else None
        )

    def decide(
        self,
        features: Mapping[str, Any],
        prediction: Mapping[str, Any] | None,
        request: Mapping[str, Any],
    ) -> PolicyResult:
        """Decide one row. `features` as made by `rule_features`; `prediction` None when the
        model failed. Never raises for run-time rule problems: they are in ``rule_errors``."""
        evaluation = self.rules.evaluate(
            {"features": features, "prediction": prediction, "request": request}
        )
        errors = evaluation.errors
        no_model = prediction is None
        hit = evaluation.hit
        if hit is not None:
            return PolicyResult(
                hit.outcome,
                "rule",
                rule=hit.name,
                reason=hit.reason,
                rule_errors=errors,
                fallback=no_model,
            )
        if prediction is None or evaluation.failed:
            return self._fallback(errors)
        decided = self.band_outcome(prediction)
        if decided is None:
            return self._fallback(errors)
        outcome, band, source = decided
        reason = None if band is None else f"BAND_{band.upper()}"
        return PolicyResult(outcome, source, band=band, reason=reason, rule_errors=errors)

    def _fallback(self, errors: tuple[RuleError, ...]) -> PolicyResult:
        fallback = self.config.fallback
        return PolicyResult(
            fallback.outcome, "fallback", reason=fallback.reason, rule_errors=errors, fallback=True
        )

    def band_outcome(self, prediction: Mapping[str, Any]) -> tuple[Any, str | None, Source] | None:
        """``(outcome, band, source)`` from the bands, or the model's own label or value
        without bands; None when the output cannot be placed (e.g. a NaN score)."""
        try:
            if self.score_bands is not None:
                outcome, band = self.score_bands.outcome(float(prediction["score"]))
                return outcome, band, "band"
            if self.value_bands is not None:
                outcome, band = self.value_bands.outcome(float(prediction["value"]))
                return outcome, band, "band"
        except (KeyError, TypeError, ValueError):
            return None
        if "label" in prediction:
            return prediction["label"], None, "model"
        return prediction.get("value"), None, "model"

    def nearest_band(self, prediction: Mapping[str, Any] | None) -> tuple[str, str] | None:
        """``(outcome, band)`` of the nearest band that is not ``review``: what the policy
        would decide if no person could look at the case. None without a prediction or
        without bands."""
        if prediction is None:
            return None
        try:
            if self.score_bands is not None:
                return _nearest_score_band(self.score_bands, float(prediction["score"]))
            if self.value_bands is not None:
                return _nearest_value_band(self.value_bands, float(prediction["value"]))
        except (KeyError, TypeError, ValueError):
            return None
        return None

    def overflow(self, prediction: Mapping[str, Any] | None) -> PolicyResult | None:
        """The decision when the review queue is full, or None when the overflow action
        cannot decide this row (``nearest_band`` without a prediction): it is queued."""
        action = self.review.overflow
        if action != "nearest_band":
            return PolicyResult(action, "overflow", reason="REVIEW_CAPACITY")
        nearest = self.nearest_band(prediction)
        if nearest is None:
            return None
        outcome, band = nearest
        return PolicyResult(outcome, "overflow", band=band, reason="REVIEW_CAPACITY")

    def priority(
        self,
        features: Mapping[str, Any],
        prediction: Mapping[str, Any] | None,
        request: Mapping[str, Any],
    ) -> tuple[float, str | None]:
        """A review task's priority and, if the expression failed, why (then the default:
        the score, or 0). Higher is reviewed first."""
        default = 0.0
        if prediction is not None:
            score = prediction.get("score")
            if isinstance(score, int | float) and math.isfinite(score):
                default = float(score)
        if self._priority is None:
            return default, None
        try:
            context = cel.Context(
                variables={"features": features, "prediction": prediction, "request": request}
            )
            value = self._priority.execute(context)
        except Exception as exc:  # a run-time CEL failure: the default priority, not a crash
            return default, f"{type(exc).__name__}: {str(exc).split('. ')[0]}"
        if isinstance(value, bool) or not isinstance(value, int | float):
            return default, f"expected a number, got {type(value).__name__}"
        if not math.isfinite(value):
            return default, "expected a finite number"
        return float(value), None


def _nearest_score_band(bands: ScoreBands, score: float) -> tuple[str, str]:
    outcome, band = bands.outcome(score)
    if outcome != "review":
        return outcome, band
    # Ties go to decline: the cautious side when nobody can look at the case.
    if score - bands.approve_below < bands.decline_at_or_above - score:
        return "approve", "approve"
    return "decline", "decline"


def _nearest_value_band(bands: ValueBands, value: float) -> tuple[str, str] | None:
    bands.outcome(value)  # validates the value
    items = bands.bands
    # every band's lower edge (-inf for the first), so distances need no special case
    edges = [-math.inf, *(b.below if b.below is not None else math.inf for b in items)]
    index = next(i for i, b in enumerate(items) if b.below is None or value < b.below)
    if items[index].outcome != "review":
        return items[index].outcome, items[index].name
    candidates = [
        (value - edges[i + 1] if i < index else edges[i] - value, i)
        for i, band in enumerate(items)
        if band.outcome != "review"
    ]
    if not candidates:
        return None
    # nearest band by the distance to its edge; ties go to the higher band (listed later)
    _, chosen = min(candidates, key=lambda c: (c[0], -c[1]))
    return items[chosen].outcome, items[chosen].name
