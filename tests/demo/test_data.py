"""The synthetic credit applications: deterministic, documented and plausible."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.demo.data import (
    CHANNELS,
    COUNTRIES,
    DRIFTED_COLUMNS,
    DRIFTS,
    FEATURES,
    INCOME_FACTOR,
    LABEL,
    NEW_CHANNEL,
    NEW_CHANNEL_SHARE,
    REQUEST_COLUMNS,
    Drift,
    generate_applications,
)
from bastion.errors import InvalidInput

N_ROWS = 5_000


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return generate_applications(N_ROWS, seed=7)


def test_generate_applications_same_seed_gives_identical_frame(frame: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(generate_applications(N_ROWS, seed=7), frame)


def test_generate_applications_different_seed_gives_different_frame(
    frame: pd.DataFrame,
) -> None:
    other = generate_applications(N_ROWS, seed=8)
    assert not other.equals(frame)
    assert not np.allclose(other["income"], frame["income"])


def test_generate_applications_has_documented_columns_and_dtypes(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == [*REQUEST_COLUMNS, LABEL]
    assert len(frame) == N_ROWS
    for column in ("income", "debt_ratio", "utilization", "employment_years", "amount"):
        assert frame[column].dtype == np.float64, column
    assert frame["age"].dtype == np.int64
    assert frame[LABEL].dtype == np.int64
    assert pd.api.types.is_string_dtype(frame["note"])


def test_generate_applications_keeps_fixed_category_lists() -> None:
    tiny = generate_applications(3, seed=0)
    for column, categories in (("channel", CHANNELS), ("country", COUNTRIES)):
        assert isinstance(tiny[column].dtype, pd.CategoricalDtype)
        assert list(tiny[column].cat.categories) == categories
        assert not tiny[column].cat.ordered


def test_generate_applications_values_stay_in_documented_ranges(frame: pd.DataFrame) -> None:
    assert (frame["income"] >= 3_000).all()
    assert 30_000 < frame["income"].median() < 50_000
    debt = frame["debt_ratio"]
    assert 0.01 < debt.isna().mean() < 0.08
    assert debt.dropna().between(0, 1.5).all()
    assert frame["utilization"].between(0, 1.25).all()
    assert (frame["utilization"] > 1).any()
    assert frame["age"].between(18, 90).all()
    years = frame["employment_years"]
    assert 0.05 < years.isna().mean() < 0.3
    known = years.notna()
    assert (years[known] >= 0).all()
    assert (years[known] <= frame.loc[known, "age"] - 16).all()
    assert frame["amount"].between(500, 75_000).all()
    assert (frame["amount"] % 100 == 0).all()
    assert set(frame[LABEL].unique()) == {0, 1}
    assert (
        frame[REQUEST_COLUMNS].drop(columns=["debt_ratio", "employment_years"]).notna().all().all()
    )


def test_generate_applications_default_rate_is_realistic(frame: pd.DataFrame) -> None:
    assert 0.08 <= frame[LABEL].mean() <= 0.18


def test_generate_applications_channels_and_countries_follow_their_weights(
    frame: pd.DataFrame,
) -> None:
    channel = frame["channel"].value_counts(normalize=True)
    country = frame["country"].value_counts(normalize=True)
    assert channel["web"] > channel["branch"] > channel["partner"] > channel["phone"] > 0.05
    assert country["DE"] > country["FR"] > country["IT"] > country["NL"] > 0.05


def test_generate_applications_defaults_rise_with_debt(frame: pd.DataFrame) -> None:
    debt = frame["debt_ratio"]
    high = frame.loc[debt > debt.quantile(0.75), LABEL].mean()
    low = frame.loc[debt < debt.quantile(0.25), LABEL].mean()
    assert high > 2 * low


def test_generate_applications_notes_are_varied_sentences(frame: pd.DataFrame) -> None:
    notes = frame["note"]
    assert notes.str.len().between(20, 200).all()
    assert notes.nunique() > N_ROWS // 2
    web = frame["channel"] == "web"
    assert notes[web].str.contains(r"\bI\b|\bi\b").mean() > 0.9
    assert not notes[~web].str.contains(r"\bI\b").any()
    assert not notes.str.contains(r"\d{4,}|@").any(), "notes must not hold personal data"


def test_features_are_the_model_columns_without_note_or_label() -> None:
    assert [*FEATURES, "note"] == REQUEST_COLUMNS
    assert LABEL not in FEATURES
    assert "note" not in FEATURES


@pytest.mark.parametrize("n_rows", [0, -5])
def test_generate_applications_rejects_non_positive_row_counts(n_rows: int) -> None:
    with pytest.raises(InvalidInput, match="n_rows must be"):
        generate_applications(n_rows)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1), n_rows=st.integers(1, 300))
def test_generate_applications_any_seed_respects_the_schema(seed: int, n_rows: int) -> None:
    frame = generate_applications(n_rows, seed=seed)
    assert len(frame) == n_rows
    assert list(frame.columns) == [*REQUEST_COLUMNS, LABEL]
    assert frame["age"].between(18, 90).all()
    assert frame["debt_ratio"].dropna().between(0, 1.5).all()
    assert frame["amount"].between(500, 75_000).all()
    assert list(frame["country"].cat.categories) == COUNTRIES


@pytest.mark.parametrize("drift", DRIFTS)
def test_drift_mode_moves_its_columns_and_leaves_the_others_identical(
    frame: pd.DataFrame, drift: Drift
) -> None:
    drifted = generate_applications(N_ROWS, seed=7, drift=drift)
    moved = set(DRIFTED_COLUMNS[drift]) | ({LABEL} if drift == "concept" else set())
    for column in frame.columns:
        same = drifted[column].astype(object).equals(frame[column].astype(object))
        assert same != (column in moved), column


def test_income_shift_multiplies_income(frame: pd.DataFrame) -> None:
    drifted = generate_applications(N_ROWS, seed=7, drift="income_shift")
    ratio = drifted["income"].median() / frame["income"].median()
    assert ratio == pytest.approx(INCOME_FACTOR, rel=0.01)


def test_new_channel_brings_a_channel_training_never_saw(frame: pd.DataFrame) -> None:
    drifted = generate_applications(N_ROWS, seed=7, drift="new_channel")
    assert list(drifted["channel"].cat.categories) == [*CHANNELS, NEW_CHANNEL]
    assert NEW_CHANNEL not in set(frame["channel"])
    share = (drifted["channel"] == NEW_CHANNEL).mean()
    assert share == pytest.approx(NEW_CHANNEL_SHARE, abs=0.03)
    # taken evenly from every channel: the old channels keep their proportions
    old = drifted.loc[drifted["channel"] != NEW_CHANNEL, "channel"].astype(str)
    before = frame["channel"].astype(str).value_counts(normalize=True)
    after = old.value_counts(normalize=True)
    assert (after - before).abs().max() < 0.03


def test_noisy_notes_are_half_german_or_spanish_and_otherwise_misspelt(
    frame: pd.DataFrame,
) -> None:
    notes = generate_applications(N_ROWS, seed=7, drift="noisy_notes")["note"]
    foreign = notes.str.contains(r"\b(?:Der|Kunde|Brauche|El|Necesito)\b")
    assert 0.45 < foreign.mean() < 0.55
    assert notes.str.contains(r"[äöüßáéíóñ]").mean() > 0.2
    english = ~foreign
    changed = notes[english] != frame.loc[english, "note"]
    # a few stay as they were: swapping a double letter ("ll") changes nothing
    assert changed.mean() > 0.9
    assert not notes.str.contains(r"\d{4,}|@").any(), "notes must not hold personal data"


def test_concept_change_keeps_the_default_rate_but_breaks_the_old_relation(
    frame: pd.DataFrame,
) -> None:
    drifted = generate_applications(N_ROWS, seed=7, drift="concept")
    assert 0.06 <= drifted[LABEL].mean() <= 0.14
    debt = drifted["debt_ratio"]
    high = drifted.loc[debt > debt.quantile(0.75), LABEL].mean()
    low = drifted.loc[debt < debt.quantile(0.25), LABEL].mean()
    assert high < low, "under the new concept more debt no longer means more defaults"


def test_generate_applications_rejects_unknown_drift_modes() -> None:
    with pytest.raises(InvalidInput, match="drift must be one of income_shift"):
        generate_applications(10, drift="weather")  # type: ignore[arg-type]
