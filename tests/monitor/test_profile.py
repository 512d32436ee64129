"""Profiles: bins from reference quantiles, exact merges, lossless JSON round trips."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.demo.data import generate_applications
from bastion.monitor.drift import compare
from bastion.monitor.profile import Profile, Schema, TextSketch, profile_batches, profile_frame
from bastion.monitor.sketches import CATEGORY_LIMIT, CategoricalSketch, NumericSketch, bin_counts
from bastion.registry.signature import ColumnSignature, InputSignature

SCHEMA = Schema(
    {"income": "numeric", "channel": "categorical", "notes": "text"}, prediction="score"
)


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "income": rng.lognormal(10, 1, rows),
            "channel": rng.choice(["web", "shop", "phone"], rows),
            "notes": [
                ["pays on time", "late twice", "new customer", None][i]
                for i in rng.integers(0, 4, rows)
            ],
            "score": rng.random(rows),
        }
    )


REFERENCE = profile_frame(frame(400), SCHEMA)

numbers = st.one_of(
    st.floats(min_value=-1e9, max_value=1e9, allow_nan=False),
    st.sampled_from([math.nan, math.inf, -math.inf, 0.0, 1.0]),
)
window_rows = st.lists(
    st.tuples(
        numbers,
        st.one_of(st.none(), st.sampled_from(["web", "shop", "phone", "kiosk", "app"])),
        st.one_of(
            st.none(), st.sampled_from(["pays on time", "fraude probable", "Опоздал", "", "新客户"])
        ),
        st.floats(0, 1),
    ),
    max_size=40,
)


def to_frame(rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    columns = ["income", "channel", "notes", "score"]
    data = {name: [row[i] for row in rows] for i, name in enumerate(columns)}
    result = pd.DataFrame(data, columns=columns)
    result["income"] = result["income"].astype("float64")
    result["score"] = result["score"].astype("float64")
    return result.astype({"channel": object, "notes": object})


def assert_numeric_equal(a: NumericSketch, b: NumericSketch) -> None:
    exact = ("edges", "counts", "missing", "neg_inf", "pos_inf", "count", "min", "max", "values")
    for field in exact:
        assert getattr(a, field) == getattr(b, field), field
    assert a.mean == pytest.approx(b.mean, rel=1e-9, abs=1e-6)
    assert a.m2 == pytest.approx(b.m2, rel=1e-9, abs=1e-3)


def assert_profiles_equal(a: Profile, b: Profile) -> None:
    assert a.rows == b.rows
    for name, sketch in a.features.items():
        other = b.features[name]
        if isinstance(sketch, NumericSketch):
            assert isinstance(other, NumericSketch)
            assert_numeric_equal(sketch, other)
        elif isinstance(sketch, TextSketch):
            assert isinstance(other, TextSketch)
            for descriptor, part in sketch.descriptors.items():
                assert_numeric_equal(part, other.descriptors[descriptor])
            assert sketch.script == other.script
        else:
            assert sketch == other
    assert a.prediction is not None
    assert b.prediction is not None
    assert_numeric_equal(a.prediction, b.prediction)


@settings(max_examples=80, deadline=None)
@given(window_rows, window_rows)
def test_merge_of_two_windows_equals_profile_of_their_union(
    first: list[tuple[Any, ...]], second: list[tuple[Any, ...]]
) -> None:
    merged = profile_frame(to_frame(first), SCHEMA, REFERENCE).merge(
        profile_frame(to_frame(second), SCHEMA, REFERENCE)
    )
    union = profile_frame(to_frame(first + second), SCHEMA, REFERENCE)
    assert_profiles_equal(merged, union)


def test_profile_round_trips_through_json() -> None:
    window = profile_frame(
        to_frame([(math.inf, "kiosk", "новый", 0.5), (math.nan, None, None, 0.1)]),
        SCHEMA,
        REFERENCE,
    )
    for profile in (REFERENCE, window):
        restored = Profile.from_dict(json.loads(json.dumps(profile.to_dict(), allow_nan=False)))
        assert_profiles_equal(restored, profile)


def test_reference_bins_come_from_quantiles_and_hold_every_reference_value() -> None:
    income = REFERENCE.features["income"]
    assert isinstance(income, NumericSketch)
    values = frame(400)["income"].to_numpy()
    assert income.edges[0] == values.min()
    assert income.edges[-1] == values.max()
    assert len(income.edges) == 11
    assert income.counts[0] == 0
    assert income.counts[-1] == 0
    assert all(count == 40 for count in income.counts[1:-1])
    assert income.quantiles["p50"] == pytest.approx(float(np.median(values)))
    assert income.std == pytest.approx(float(np.std(values)))


def test_window_values_outside_the_reference_range_fall_in_edge_bins() -> None:
    window = profile_frame(
        to_frame([(-1.0, "web", "", 0.0), (1e12, "web", "", 0.0), (-math.inf, "web", "", 0.0)]),
        SCHEMA,
        REFERENCE,
    )
    income = window.features["income"]
    assert isinstance(income, NumericSketch)
    assert (income.counts[0], income.counts[-1], income.neg_inf, income.count) == (1, 1, 1, 2)


def test_constant_column_has_one_closed_bin() -> None:
    schema = Schema({"x": "numeric"})
    reference = profile_frame(pd.DataFrame({"x": [2.0] * 5}), schema)
    window = profile_frame(pd.DataFrame({"x": [1.0, 2.0, 2.0, 3.0]}), schema, reference)
    sketch = window.features["x"]
    assert isinstance(sketch, NumericSketch)
    assert sketch.edges == (2.0, 2.0)
    assert sketch.counts == (1, 2, 1)


def test_all_missing_column_is_profiled_without_error() -> None:
    schema = Schema({"x": "numeric", "c": "categorical"})
    reference = profile_frame(pd.DataFrame({"x": [None, None], "c": [None, None]}), schema)
    x, c = reference.features["x"], reference.features["c"]
    assert isinstance(x, NumericSketch)
    assert isinstance(c, CategoricalSketch)
    assert (x.missing, x.count, x.min, x.edges) == (2, 0, None, ())
    assert (c.missing, c.counts) == (2, {})


def test_categorical_values_beyond_the_limit_go_to_the_unseen_bin() -> None:
    schema = Schema({"c": "categorical"})
    reference = profile_frame(pd.DataFrame({"c": ["a", "b"]}), schema)
    many = [f"v{i}" for i in range(CATEGORY_LIMIT + 10)] + ["a"]
    sketch = profile_frame(pd.DataFrame({"c": many}), schema, reference).features["c"]
    assert isinstance(sketch, CategoricalSketch)
    assert len(sketch.counts) == CATEGORY_LIMIT
    assert "a" in sketch.counts
    assert sketch.unseen == 11
    assert sketch.present == len(many)


def test_text_descriptors_use_the_reference_vocabulary() -> None:
    schema = Schema({"notes": "text"})
    reference = profile_frame(pd.DataFrame({"notes": ["pays on time", "late"]}), schema)
    window = profile_frame(
        pd.DataFrame({"notes": ["pays late", "платит вовремя"]}), schema, reference
    )
    text = window.features["notes"]
    assert isinstance(text, TextSketch)
    assert text.descriptors["oov_rate"].mean == pytest.approx(0.5)  # 0 and 1
    assert text.script.counts == {"latin": 1, "cyrillic": 1}
    reference_text = reference.features["notes"]
    assert isinstance(reference_text, TextSketch)
    assert reference_text.vocabulary == frozenset({"pays", "on", "time", "late"})
    assert text.vocabulary is None  # windows keep only the fingerprint
    assert text.fingerprint == reference_text.fingerprint


def test_profile_batches_equals_one_profile_of_all_rows() -> None:
    data = frame(90, seed=3)
    batches = (data.iloc[i : i + 25] for i in range(0, 90, 25))
    assert_profiles_equal(
        profile_batches(batches, SCHEMA, REFERENCE), profile_frame(data, SCHEMA, REFERENCE)
    )


def test_profiles_of_different_references_do_not_merge() -> None:
    other = profile_frame(frame(50, seed=9), SCHEMA)
    with pytest.raises(ValueError, match="different bin edges"):
        REFERENCE.merge(other)


def test_missing_column_and_non_numeric_values_are_named() -> None:
    with pytest.raises(ValueError, match="'income'"):
        profile_frame(pd.DataFrame({"channel": ["web"]}), Schema({"income": "numeric"}))
    with pytest.raises(ValueError, match="'income' is declared numeric"):
        profile_frame(pd.DataFrame({"income": ["abc"]}), Schema({"income": "numeric"}))


def test_schema_from_signature_treats_booleans_as_categorical() -> None:
    signature = InputSignature(
        columns=[
            ColumnSignature(name="age", kind="numeric", dtype="float64"),
            ColumnSignature(name="member", kind="boolean", dtype="bool"),
            ColumnSignature(name="notes", kind="text", dtype="object"),
        ]
    )
    schema = Schema.from_signature(signature, prediction="score")
    assert dict(schema.features) == {"age": "numeric", "member": "categorical", "notes": "text"}
    assert schema.prediction == "score"


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.floats(-5, 5).map(lambda v: round(v, 1)), max_size=50),
    st.lists(st.floats(-5, 5).map(lambda v: round(v, 1)), min_size=1, max_size=6),
)
def test_bin_counts_locate_each_value_in_its_interval(
    values: list[float], edges: list[float]
) -> None:
    grid = np.unique(edges) if len(set(edges)) > 1 else np.array([edges[0], edges[0]])
    data = np.asarray(values, dtype=np.float64)
    index = np.searchsorted(grid, data, side="right")
    index[data == grid[-1]] = grid.size - 1  # the last interval is closed
    expected = tuple(int(c) for c in np.bincount(index, minlength=grid.size + 1))
    assert bin_counts(data, tuple(float(e) for e in grid)) == expected


def test_nullable_and_boolean_columns_are_profiled() -> None:
    schema = Schema({"n": "numeric", "flag": "categorical"})
    data = pd.DataFrame(
        {
            "n": pd.array([1, None, 3], dtype="Int64"),
            "flag": pd.array([True, False, None], dtype="boolean"),
        }
    )
    profile = profile_frame(data, schema)
    n, flag = profile.features["n"], profile.features["flag"]
    assert isinstance(n, NumericSketch)
    assert isinstance(flag, CategoricalSketch)
    assert (n.count, n.missing, n.mean) == (2, 1, 2.0)
    assert (flag.counts, flag.missing) == ({"True": 1, "False": 1}, 1)


def test_a_fresh_sample_of_the_same_texts_does_not_drift_on_new_words() -> None:
    schema = Schema({"note": "text"})
    reference = profile_frame(generate_applications(2_000, seed=1)[["note"]], schema)
    window = profile_frame(generate_applications(2_000, seed=2)[["note"]], schema, reference)

    report = compare(reference, window)
    reference_oov = reference.features["note"]
    assert isinstance(reference_oov, TextSketch)
    # measured against vocabularies built without each text, not 0 by construction
    assert reference_oov.descriptors["oov_rate"].mean > 0
    assert not [f.name for f in report.features if f.drifted]
