"""Score bands for classifiers and value bands for regressors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bastion.policy import ScoreBands, ValueBand, ValueBands

ORDER = {"approve": 0, "review": 1, "decline": 2}


def test_score_bands_edges_are_exact() -> None:
    bands = ScoreBands(approve_below=0.2, decline_at_or_above=0.7)

    assert bands.outcome(0.0) == ("approve", "approve")
    assert bands.outcome(0.19999) == ("approve", "approve")
    assert bands.outcome(0.2) == ("review", "review")
    assert bands.outcome(0.69999) == ("review", "review")
    assert bands.outcome(0.7) == ("decline", "decline")
    assert bands.outcome(1.0) == ("decline", "decline")


def test_score_bands_equal_thresholds_leave_no_review_band() -> None:
    bands = ScoreBands(approve_below=0.5, decline_at_or_above=0.5)

    assert bands.outcome(0.49) == ("approve", "approve")
    assert bands.outcome(0.5) == ("decline", "decline")


def test_score_bands_rejects_reversed_thresholds_with_clear_message() -> None:
    with pytest.raises(
        ValidationError, match=r"decline_at_or_above must be ≥ approve_below \(0.7\), got 0.3"
    ):
        ScoreBands(approve_below=0.7, decline_at_or_above=0.3)


@pytest.mark.parametrize(
    ("low", "high", "field"),
    [(-0.1, 0.5, "approve_below"), (0.2, 1.5, "decline_at_or_above")],
)
def test_score_bands_rejects_thresholds_outside_unit_interval(
    low: float, high: float, field: str
) -> None:
    with pytest.raises(ValidationError) as info:
        ScoreBands(approve_below=low, decline_at_or_above=high)

    (error,) = info.value.errors()
    assert error["loc"] == (field,)


def test_score_bands_rejects_nan_threshold() -> None:
    with pytest.raises(ValidationError, match="approve_below"):
        ScoreBands(approve_below=float("nan"), decline_at_or_above=0.5)


@pytest.mark.parametrize("score", [-0.01, 1.01, float("nan")])
def test_score_bands_rejects_score_outside_unit_interval(score: float) -> None:
    bands = ScoreBands(approve_below=0.2, decline_at_or_above=0.7)

    with pytest.raises(ValueError, match=r"score must be within \[0, 1\]"):
        bands.outcome(score)


unit = st.floats(min_value=0.0, max_value=1.0, allow_nan=False)


@given(low=unit, high=unit, a=unit, b=unit)
def test_score_band_outcome_is_monotone_in_score(
    low: float, high: float, a: float, b: float
) -> None:
    bands = ScoreBands(approve_below=min(low, high), decline_at_or_above=max(low, high))
    lo, hi = sorted((a, b))

    assert ORDER[bands.outcome(lo)[0]] <= ORDER[bands.outcome(hi)[0]]


def income_bands() -> ValueBands:
    return ValueBands(
        bands=[
            ValueBand(name="small", outcome="approve", below=1000.0),
            ValueBand(name="medium", outcome="review", below=10000.0),
            ValueBand(name="large", outcome="escalate"),
        ]
    )


def test_value_bands_edges_are_exact() -> None:
    bands = income_bands()

    assert bands.outcome(-5.0) == ("approve", "small")
    assert bands.outcome(999.99) == ("approve", "small")
    assert bands.outcome(1000.0) == ("review", "medium")
    assert bands.outcome(10000.0) == ("escalate", "large")
    assert bands.outcome(1e12) == ("escalate", "large")


def test_value_bands_single_band_takes_everything() -> None:
    bands = ValueBands(bands=[ValueBand(name="all", outcome="review")])

    assert bands.outcome(42.0) == ("review", "all")


def test_value_bands_rejects_non_increasing_thresholds() -> None:
    with pytest.raises(
        ValidationError, match=r"bands\[1\].below must be > bands\[0\].below \(100.0\), got 50.0"
    ):
        ValueBands(
            bands=[
                ValueBand(name="a", outcome="approve", below=100.0),
                ValueBand(name="b", outcome="review", below=50.0),
                ValueBand(name="c", outcome="decline"),
            ]
        )


def test_value_bands_rejects_bound_on_last_band() -> None:
    with pytest.raises(ValidationError, match=r"bands\[0\].below must be omitted on the last"):
        ValueBands(bands=[ValueBand(name="a", outcome="approve", below=1.0)])


def test_value_bands_rejects_missing_bound_before_last() -> None:
    with pytest.raises(ValidationError, match=r"bands\[0\].below is required"):
        ValueBands(
            bands=[ValueBand(name="a", outcome="approve"), ValueBand(name="b", outcome="review")]
        )


def test_value_bands_rejects_duplicate_names() -> None:
    with pytest.raises(ValidationError, match=r"bands\[1\].name must be unique"):
        ValueBands(
            bands=[
                ValueBand(name="a", outcome="approve", below=1.0),
                ValueBand(name="a", outcome="review"),
            ]
        )


def test_value_bands_rejects_empty_list() -> None:
    with pytest.raises(ValidationError, match="bands"):
        ValueBands(bands=[])


def test_value_bands_rejects_non_finite_value() -> None:
    with pytest.raises(ValueError, match="finite"):
        income_bands().outcome(float("inf"))


@given(
    a=st.floats(allow_nan=False, allow_infinity=False),
    b=st.floats(allow_nan=False, allow_infinity=False),
)
def test_value_band_index_is_monotone_in_value(a: float, b: float) -> None:
    bands = income_bands()
    names = [band.name for band in bands.bands]
    lo, hi = sorted((a, b))

    assert names.index(bands.outcome(lo)[1]) <= names.index(bands.outcome(hi)[1])
