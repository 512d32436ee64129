"""The out-of-distribution score on the demo credit data and on degenerate references."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from bastion.demo.data import FEATURES, generate_applications
from bastion.errors import InvalidInput
from bastion.guard.ood import OODProfile, OODScores
from bastion.registry.signature import ColumnSignature, InputSignature, infer_input_signature


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return generate_applications(10_000, seed=1)[FEATURES]


@pytest.fixture(scope="module")
def profile(reference: pd.DataFrame) -> OODProfile:
    return OODProfile.fit(
        reference, infer_input_signature(reference), false_alarm_rate=0.01, seed=0
    )


@pytest.fixture(scope="module")
def fresh() -> pd.DataFrame:
    """New applications from the training distribution (another seed than the reference)."""
    return generate_applications(5_000, seed=2)[FEATURES]


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """Rows as the input contract hands them over: plain values, None for missing."""
    plain = frame.astype(object)
    rows = plain.where(plain.notna(), None).to_dict("records")
    return [{str(name): value for name, value in row.items()} for row in rows]


def test_score_flags_training_like_rows_at_about_the_false_alarm_rate(
    profile: OODProfile, fresh: pd.DataFrame
) -> None:
    rate = profile.score(fresh).flagged.mean()

    assert 0.003 <= rate <= 0.025


def test_score_flags_shifted_rows(profile: OODProfile, fresh: pd.DataFrame) -> None:
    shifted = fresh.assign(income=fresh.income * 5, age=fresh.age + 40, channel="app")

    assert profile.score(shifted).flagged.mean() > 0.9


def test_score_flags_every_row_with_an_unseen_category(
    profile: OODProfile, fresh: pd.DataFrame
) -> None:
    scores = profile.score(fresh.assign(channel="app"))

    assert scores.flagged.all()
    assert (scores.score == 1.0).all()
    assert all("channel" in names for names in scores.outside)


def test_score_flags_most_numerically_shifted_rows(
    profile: OODProfile, fresh: pd.DataFrame
) -> None:
    # a shift that lands a row among other plausible training rows cannot be seen in that
    # row alone (population drift is the monitor's job); most rows still stand out
    assert profile.score(fresh.assign(income=fresh.income * 5)).flagged.mean() > 0.6
    shifted = fresh.assign(income=fresh.income * 5, age=fresh.age + 40)
    assert profile.score(shifted).flagged.mean() > 0.75


def test_score_flags_far_outliers_and_names_the_feature(
    profile: OODProfile, fresh: pd.DataFrame
) -> None:
    scores = profile.score(fresh.head(10).assign(amount=5_000_000.0))

    assert scores.flagged.all()
    assert all("amount" in names for names in scores.outside)


def test_score_shapes_and_bounds(profile: OODProfile, fresh: pd.DataFrame) -> None:
    scores = profile.score(fresh)

    assert len(scores) == len(fresh)
    assert scores.score.shape == scores.multivariate.shape == scores.flagged.shape == (5_000,)
    assert ((scores.score >= 0) & (scores.score <= 1)).all()
    assert (scores.score >= scores.multivariate).all()
    assert np.array_equal(scores.flagged, scores.score >= profile.threshold)


def test_score_threshold_can_be_overridden(profile: OODProfile, fresh: pd.DataFrame) -> None:
    default = profile.score(fresh)
    stricter = profile.score(fresh, threshold=0.5)

    assert stricter.threshold == 0.5
    assert stricter.flagged.sum() > default.flagged.sum()


def test_score_treats_missing_values_as_typical(profile: OODProfile, fresh: pd.DataFrame) -> None:
    scores = profile.score(fresh.head(50).assign(debt_ratio=np.nan, employment_years=np.nan))

    assert np.isfinite(scores.score).all()
    assert not any("debt_ratio" in names for names in scores.outside)


def test_score_records_equals_score_on_a_frame(profile: OODProfile, fresh: pd.DataFrame) -> None:
    batch = fresh.head(64).assign(channel=["app", *fresh.channel.head(63).astype(str)])

    by_frame = profile.score(batch)
    by_records = profile.score_records(records(batch))

    assert np.array_equal(by_frame.score, by_records.score)
    assert np.array_equal(by_frame.flagged, by_records.flagged)
    assert by_frame.outside == by_records.outside


def test_score_of_an_empty_batch_is_empty(profile: OODProfile) -> None:
    assert len(profile.score_records([])) == 0


def test_score_needs_every_profiled_column(profile: OODProfile, fresh: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="channel"):
        profile.score(fresh.drop(columns="channel"))


def test_as_dicts_is_json_ready(profile: OODProfile, fresh: pd.DataFrame) -> None:
    [verdict] = profile.score(fresh.head(1).assign(age=130)).as_dicts()

    assert set(verdict) == {"score", "flagged", "threshold", "outside"}
    assert verdict["outside"] == ["age"]
    json.dumps(verdict, allow_nan=False)


def test_profile_round_trips_through_json(profile: OODProfile, fresh: pd.DataFrame) -> None:
    stored = json.dumps(profile.to_dict(), allow_nan=False)

    restored = OODProfile.from_dict(json.loads(stored))

    before, after = profile.score(fresh), restored.score(fresh)
    assert np.array_equal(before.score, after.score)
    assert np.array_equal(before.flagged, after.flagged)
    assert before.outside == after.outside
    assert restored.to_dict() == profile.to_dict()


def test_profile_calibration_is_bounded_in_size(profile: OODProfile) -> None:
    assert profile.calibration_rows == 5_000
    assert len(profile.calibration) <= 2048


@pytest.mark.parametrize(
    "damage",
    [
        {"format": "something/2"},
        {"threshold": 2.0},
        {"mean": [0.0]},
        {"calibration": []},
        {"surprise": 1},
    ],
)
def test_from_dict_refuses_a_malformed_profile(profile: OODProfile, damage: dict[str, Any]) -> None:
    with pytest.raises(InvalidInput, match="OOD profile"):
        OODProfile.from_dict({**profile.to_dict(), **damage})


def test_fit_is_reproducible_with_a_seed(reference: pd.DataFrame) -> None:
    signature = infer_input_signature(reference)
    first = OODProfile.fit(reference, signature, seed=3).to_dict()

    assert OODProfile.fit(reference, signature, seed=3).to_dict() == first


@pytest.mark.parametrize("rate", [0.0, -0.1, 0.6])
def test_fit_refuses_a_false_alarm_rate_outside_the_open_interval(
    reference: pd.DataFrame, rate: float
) -> None:
    with pytest.raises(InvalidInput, match="false_alarm_rate"):
        OODProfile.fit(reference, infer_input_signature(reference), false_alarm_rate=rate)


def test_fit_refuses_an_empty_reference(reference: pd.DataFrame) -> None:
    with pytest.raises(InvalidInput, match="at least one row"):
        OODProfile.fit(reference.head(0), infer_input_signature(reference))


# -- degenerate references -----------------------------------------------------------------

NUMBERS = InputSignature(
    columns=[
        ColumnSignature(name="a", kind="numeric", dtype="float64"),
        ColumnSignature(name="b", kind="numeric", dtype="float64"),
        ColumnSignature(name="colour", kind="categorical", dtype="str"),
    ]
)


def defined(scores: OODScores) -> bool:
    return bool(np.isfinite(scores.score).all() and np.isfinite(scores.multivariate).all())


def test_fit_on_a_constant_column_flags_only_values_that_differ() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=500), "b": 3.0, "colour": "red"})
    profile = OODProfile.fit(frame, NUMBERS)

    scores = profile.score(pd.DataFrame({"a": [0.0, 0.0], "b": [3.0, 4.0], "colour": "red"}))

    assert defined(scores)
    assert scores.outside == [[], ["b"]]
    json.dumps(profile.to_dict(), allow_nan=False)


def test_fit_on_an_all_missing_column_ignores_it() -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=500), "b": np.nan, "colour": None})
    profile = OODProfile.fit(frame, NUMBERS)

    scores = profile.score(pd.DataFrame({"a": [0.0, 0.1], "b": [1e9, np.nan], "colour": None}))

    assert defined(scores)
    assert not scores.flagged.any()
    document = profile.to_dict()
    assert document["low"][1] is None
    assert document["high"][1] is None
    json.dumps(document, allow_nan=False)


def test_fit_on_a_single_row_gives_defined_scores() -> None:
    frame = pd.DataFrame({"a": [1.0], "b": [2.0], "colour": ["red"]})
    profile = OODProfile.fit(frame, NUMBERS)

    same = profile.score(frame)
    other = profile.score(pd.DataFrame({"a": [5.0], "b": [2.0], "colour": ["blue"]}))

    assert defined(same)
    assert defined(other)
    assert same.score.tolist() == [0.0]
    assert other.flagged.tolist() == [True]
    assert OODProfile.from_dict(json.loads(json.dumps(profile.to_dict()))).threshold == 0.99


def test_fit_without_numeric_features_scores_categories_only() -> None:
    only_colour = InputSignature(columns=NUMBERS.columns[2:])
    profile = OODProfile.fit(pd.DataFrame({"colour": ["red", "blue"] * 50}), only_colour)

    scores = profile.score(pd.DataFrame({"colour": ["red", "green"]}))

    assert scores.flagged.tolist() == [False, True]
    assert scores.multivariate.tolist() == [0.0, 0.0]


@settings(max_examples=50, deadline=None)
@given(
    reference=hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.just(2)),
        elements=st.sampled_from([np.nan, 0.0, 1.0]) | st.floats(-1e6, 1e6),
    ),
    query=hnp.arrays(
        np.float64, st.tuples(st.integers(0, 5), st.just(2)), elements=st.floats(width=64)
    ),
)
def test_score_is_always_defined(
    reference: np.ndarray[Any, Any], query: np.ndarray[Any, Any]
) -> None:
    def frame(values: np.ndarray[Any, Any]) -> pd.DataFrame:
        return pd.DataFrame({"a": values[:, 0], "b": values[:, 1], "colour": "red"})

    profile = OODProfile.fit(frame(reference), NUMBERS)

    scores = profile.score(frame(query))

    assert defined(scores)
    assert ((scores.score >= 0) & (scores.score <= 1)).all()
    json.dumps(profile.to_dict(), allow_nan=False)
