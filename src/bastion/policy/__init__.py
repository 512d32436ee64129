"""Decision policy: CEL rules and score/value bands that turn a model output into an outcome.

A library only: it knows nothing of the spec file, HTTP or storage. `CompiledRules` compiles
each rule once and evaluates them in order; `ScoreBands` and `ValueBands` map a classifier's
score or a regressor's value to an outcome.
"""

from bastion.policy.bands import ScoreBands, ValueBand, ValueBands
from bastion.policy.rules import (
    CompiledRules,
    OnError,
    RuleError,
    RuleEvaluation,
    RuleHit,
    RuleSpec,
)

__all__ = [
    "CompiledRules",
    "OnError",
    "RuleError",
    "RuleEvaluation",
    "RuleHit",
    "RuleSpec",
    "ScoreBands",
    "ValueBand",
    "ValueBands",
]
