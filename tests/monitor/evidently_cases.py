"""Seeded two-sample cases and the drift scores Evidently 0.7.23 gives them.

The expected scores were computed by running this file with the interpreter of a separate
environment that has ``evidently==0.7.23`` and ``pandas<3`` (Evidently does not import
with pandas 3)::

    /work/evidently-venv/bin/python tests/monitor/evidently_cases.py

which prints ``EVIDENTLY`` below. Both environments have numpy 2.4, so the seeded samples
are the same bit for bit. Each case names the method to force, or None for Evidently's
default choice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:  # the Evidently environment that regenerates the scores has no Bastion
    from bastion.monitor.methods import Method


@dataclass(frozen=True)
class Case:
    name: str
    kind: Literal["numeric", "categorical"]
    method: Method | None
    reference: list[Any]
    current: list[Any]


def cases() -> list[Case]:
    rng = np.random.default_rng(7)

    def floats(x: Any) -> list[float]:
        return [float(v) for v in x]

    def strings(x: Any) -> list[str]:
        return [str(v) for v in x]

    return [
        Case(
            "ks_small",
            "numeric",
            None,
            floats(rng.normal(0, 1, 300)),
            floats(rng.normal(0.3, 1, 200)),
        ),
        Case(
            "ks_asymptotic",
            "numeric",
            "ks",
            floats(rng.normal(0, 1, 3000)),
            floats(rng.normal(0.05, 1, 20000)),
        ),
        Case(
            "wasserstein_large",
            "numeric",
            None,
            floats(rng.normal(0, 2, 2000)),
            floats(rng.normal(0.5, 2, 1500)),
        ),
        Case(
            "wasserstein_constant",
            "numeric",
            "wasserstein",
            [3.0] * 1500,
            floats(rng.normal(3, 1, 100)),
        ),
        Case(
            "numeric_few_small",
            "numeric",
            None,
            floats(rng.integers(0, 4, 500)),
            floats(rng.integers(0, 5, 400)),
        ),
        Case(
            "numeric_binary_small",
            "numeric",
            None,
            floats(rng.integers(0, 2, 500)),
            floats(rng.integers(0, 2, 400)),
        ),
        Case(
            "numeric_few_large",
            "numeric",
            None,
            floats(rng.integers(0, 4, 5000)),
            floats(rng.integers(0, 5, 400)),
        ),
        Case(
            "jensenshannon_histogram",
            "numeric",
            "jensenshannon",
            floats(rng.normal(0, 1, 2000)),
            floats(rng.normal(0.2, 1.2, 700)),
        ),
        Case(
            "categorical_small",
            "categorical",
            None,
            strings(rng.choice(list("abcd"), 600)),
            strings(rng.choice(list("abcde"), 300)),
        ),
        Case(
            "categorical_binary",
            "categorical",
            None,
            strings(rng.choice(list("ab"), 600, p=[0.3, 0.7])),
            strings(rng.choice(list("ab"), 300)),
        ),
        Case(
            "categorical_large",
            "categorical",
            None,
            strings(rng.choice(list("abcd"), 3000)),
            strings(rng.choice(list("abcde"), 1000, p=[0.1, 0.2, 0.3, 0.3, 0.1])),
        ),
        Case(
            "chisquare_large",
            "categorical",
            "chisquare",
            strings(rng.choice(list("abcd"), 3000)),
            strings(rng.choice(list("abcd"), 1000, p=[0.2, 0.2, 0.3, 0.3])),
        ),
    ]


#: name -> (method Evidently used, its drift_score, its drift verdict)
EVIDENTLY: dict[str, tuple[str, float, bool]] = {
    "ks_small": ("ks", 0.0039250453637471525, True),
    "ks_asymptotic": ("ks", 0.013870137405381478, True),
    "wasserstein_large": ("wasserstein", 0.2564158766211927, True),
    "wasserstein_constant": ("wasserstein", 719.3690201507844, True),
    "numeric_few_small": ("chisquare", 0.0, True),
    "numeric_binary_small": ("z", 0.834656938456896, False),
    "numeric_few_large": ("jensenshannon", 0.259754418310544, True),
    "jensenshannon_histogram": ("jensenshannon", 0.1089333362314411, True),
    "categorical_small": ("chisquare", 0.0, True),
    "categorical_binary": ("z", 4.027400635209233e-11, True),
    "categorical_large": ("jensenshannon", 0.228721836158818, True),
    "chisquare_large": ("chisquare", 6.146831211055212e-12, True),
}


def _evidently_scores() -> dict[str, tuple[str, float, bool]]:  # pragma: no cover - other venv
    import pandas as pd
    from evidently.legacy.calculations.stattests import get_stattest  # type: ignore[import-not-found]
    from evidently.legacy.core import ColumnType  # type: ignore[import-not-found]

    out: dict[str, tuple[str, float, bool]] = {}
    for case in cases():
        kind = ColumnType.Numerical if case.kind == "numeric" else ColumnType.Categorical
        reference, current = pd.Series(case.reference), pd.Series(case.current)
        test = get_stattest(reference, current, kind, case.method)
        result = test(reference, current, kind, None)
        out[case.name] = (test.name, float(result.drift_score), bool(result.drifted))
    return out


if __name__ == "__main__":  # pragma: no cover - run with the Evidently environment
    print(json.dumps(_evidently_scores(), indent=1))
