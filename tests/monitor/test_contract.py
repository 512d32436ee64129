"""The contract every drift method keeps, over every kind of feature it applies to.

Like scikit-learn's common estimator checks: one suite, parametrised over the methods.
Identical samples never drift, a large shift always does, degenerate columns (constant,
all missing, a single value, new categories) get finite results without an exception, and
where scipy computes the same statistic the values agree. Numeric features run twice: with
raw values (exact K-S and Wasserstein) and from profiles alone (binned approximations).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats
from scipy.spatial import distance

from bastion.monitor.drift import FeatureDrift, compare
from bastion.monitor.methods import ALLOWED, DriftConfig, Method
from bastion.monitor.profile import FeatureKind, Schema, profile_frame

RNG = np.random.default_rng(11)
CONTINUOUS = RNG.normal(10, 2, 400)
DISCRETE = RNG.integers(0, 4, 400).astype(np.float64)
BINARY = RNG.integers(0, 2, 400).astype(np.float64)
LETTERS = RNG.choice(["a", "b", "c"], 400).astype(object)
PAIR = RNG.choice(["a", "b"], 400).astype(object)


@dataclass(frozen=True)
class Member:
    method: Method
    kind: FeatureKind
    raw: bool

    @property
    def id(self) -> str:
        return f"{self.method}-{self.kind}{'-raw' if self.raw else ''}"

    def sample(self) -> np.ndarray[Any, Any]:
        """A typical sample for the method (values it is meant for)."""
        if self.kind == "categorical":
            return PAIR if self.method == "z" else LETTERS
        return {"chisquare": DISCRETE, "z": BINARY}.get(self.method, CONTINUOUS)

    def shifted(self) -> np.ndarray[Any, Any]:
        sample = self.sample()
        if self.kind == "categorical":
            return np.where(np.arange(sample.size) % 10 == 0, sample, "b").astype(object)
        if self.method in ("chisquare", "z"):
            return np.where(np.arange(sample.size) % 10 == 0, sample, 1.0)
        shifted: np.ndarray[Any, Any] = sample + 5 * sample.std()
        return shifted

    def run(self, reference: Any, current: Any, **config: Any) -> FeatureDrift:
        schema = Schema({"x": self.kind})
        profile = profile_frame(pd.DataFrame({"x": reference}), schema)
        window = profile_frame(pd.DataFrame({"x": current}), schema, profile)
        values = self.raw and self.kind == "numeric"
        ref = np.asarray(reference, dtype=np.float64) if values else None
        cur = np.asarray(current, dtype=np.float64) if values else None
        result = compare(
            profile,
            window,
            DriftConfig(method=self.method, **config),
            reference_values=None if ref is None else {"x": ref},
            current_values=None if cur is None else {"x": cur},
        ).feature("x")
        assert result.method == self.method
        return result


MEMBERS = [
    Member(method, kind, raw)
    for kind in ("numeric", "categorical")
    for method in sorted(ALLOWED[kind])
    for raw in ((True, False) if kind == "numeric" else (False,))
]


def finite_everywhere(result: FeatureDrift) -> None:
    """Every number in the result is finite: it serialises as strict JSON."""
    json.dumps(result.to_dict(), allow_nan=False)


@pytest.fixture(params=MEMBERS, ids=lambda member: member.id)
def member(request: pytest.FixtureRequest) -> Member:
    return request.param  # type: ignore[no-any-return]


def test_identical_samples_do_not_drift(member: Member) -> None:
    result = member.run(member.sample(), member.sample())
    assert not result.drifted
    finite_everywhere(result)


def test_large_shift_drifts(member: Member) -> None:
    result = member.run(member.sample(), member.shifted())
    assert result.drifted
    assert result.effect_size > 0.1
    finite_everywhere(result)


def test_every_p_value_has_an_effect_size_beside_it(member: Member) -> None:
    result = member.run(member.sample(), member.shifted())
    for statistic in result.statistics:
        assert math.isfinite(statistic.effect_size)
        if statistic.p_value is not None:
            assert 0.0 <= statistic.p_value <= 1.0


DEGENERATE: dict[str, tuple[list[Any], list[Any], bool | None]] = {
    # name: (reference, current, drifted? — None where any verdict is reasonable)
    "constant_same": ([1.0] * 30, [1.0] * 30, False),
    "constant_changed": ([1.0] * 30, [2.0] * 30, True),
    "all_missing_window": ([1.0, 2.0, 3.0] * 10, [None] * 30, True),
    "all_missing_both": ([None] * 30, [None] * 30, False),
    "all_missing_reference": ([None] * 30, [1.0, 2.0] * 15, True),
    "single_value_window": ([1.0, 2.0, 3.0] * 10, [2.0], None),
    "empty_window": ([1.0, 2.0, 3.0] * 10, [], False),
}


@pytest.mark.parametrize("case", sorted(DEGENERATE))
def test_degenerate_columns_have_defined_results(member: Member, case: str) -> None:
    reference, current, drifted = DEGENERATE[case]
    if member.kind == "categorical":
        reference = [None if v is None else f"v{v}" for v in reference]
        current = [None if v is None else f"v{v}" for v in current]
    result = member.run(pd.Series(reference, dtype=object), pd.Series(current, dtype=object))
    finite_everywhere(result)
    if drifted is not None:
        assert result.drifted is drifted


@pytest.mark.parametrize(
    "member", [m for m in MEMBERS if m.kind == "categorical"], ids=lambda member: member.id
)
def test_unseen_category_drifts_and_is_counted(member: Member) -> None:
    current = np.where(np.arange(400) % 2 == 0, member.sample(), "brand-new").astype(object)
    result = member.run(member.sample(), current)
    assert result.drifted
    assert result.unseen_share == pytest.approx(0.5)
    finite_everywhere(result)


def test_values_agree_with_scipy(member: Member) -> None:
    reference = member.sample()
    if member.kind == "numeric" and member.method not in ("chisquare", "z"):
        current = reference[:250] + np.random.default_rng(5).normal(0.3, 0.5, 250)
    else:
        current = member.shifted()[:250]
    result = member.run(reference, current, correction="none")
    if member.method == "ks" and member.raw:
        assert result.score == pytest.approx(
            scipy_stats.ks_2samp(reference, current).pvalue, abs=1e-9
        )
    elif member.method == "wasserstein" and member.raw:
        expected = scipy_stats.wasserstein_distance(reference, current) / np.std(reference)
        assert result.score == pytest.approx(expected, abs=1e-9)
    elif member.method == "chisquare":
        keys = sorted(set(reference) | set(current))
        ref = np.array([np.sum(reference == k) for k in keys], dtype=np.float64)
        cur = np.array([np.sum(current == k) for k in keys], dtype=np.float64)
        with np.errstate(divide="ignore"):
            expected = scipy_stats.chisquare(cur, ref * cur.sum() / ref.sum()).pvalue
        assert result.score == pytest.approx(expected, abs=1e-9)
    elif member.method == "jensenshannon" and (member.kind == "categorical" or member.raw):
        if member.kind == "categorical":
            keys = sorted(set(reference) | set(current))
            ref = np.array([np.sum(reference == k) for k in keys], dtype=np.float64)
            cur = np.array([np.sum(current == k) for k in keys], dtype=np.float64)
        else:
            edges = np.histogram_bin_edges(np.concatenate((reference, current)), bins="sturges")
            ref, cur = np.histogram(reference, edges)[0], np.histogram(current, edges)[0]
        expected = distance.jensenshannon(ref / ref.sum(), cur / cur.sum())
        assert result.score == pytest.approx(expected, abs=1e-9)
    else:
        assert result.exact is (member.raw or member.method in ("psi", "z"))
