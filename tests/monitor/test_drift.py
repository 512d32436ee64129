"""compare(): method choice, overrides, correction across features, data set and prediction drift."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError
from scipy import stats as scipy_stats

from bastion.monitor.drift import DriftReport, compare
from bastion.monitor.methods import DriftConfig, default_method
from bastion.monitor.profile import Schema, profile_frame

RNG = np.random.default_rng(3)


def run(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    schema: Schema,
    config: DriftConfig | None = None,
) -> DriftReport:
    profile = profile_frame(reference, schema)
    return compare(profile, profile_frame(current, schema, profile), config)


@pytest.mark.parametrize(
    ("kind", "rows", "distinct", "method"),
    [
        ("numeric", 1000, 6, "ks"),
        ("numeric", 1000, 5, "chisquare"),
        ("numeric", 1000, 2, "z"),
        ("numeric", 1001, 6, "wasserstein"),
        ("numeric", 1001, 5, "jensenshannon"),
        ("categorical", 1000, 3, "chisquare"),
        ("categorical", 1000, 2, "z"),
        ("categorical", 1001, 40, "jensenshannon"),
    ],
)
def test_default_method_follows_evidentlys_table(
    kind: str, rows: int, distinct: int, method: str
) -> None:
    assert default_method(kind, rows, distinct) == method  # type: ignore[arg-type]


def test_config_precedence_is_per_feature_then_all_then_kind() -> None:
    config = DriftConfig(
        method="psi", num_method="ks", per_feature_method={"a": "wasserstein"}, num_threshold=0.2
    )
    assert config.method_for("a", "numeric") == "wasserstein"
    assert config.method_for("b", "numeric") == "psi"
    assert DriftConfig(num_method="ks").method_for("b", "numeric") == "ks"
    assert config.threshold_for("b", "numeric", "psi") == 0.2
    assert DriftConfig().threshold_for("b", "categorical", "jensenshannon") == 0.1


def test_a_method_that_does_not_fit_the_feature_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"method for 'c' must be one of .* got 'ks'"):
        DriftConfig(method="ks").method_for("c", "categorical")
    with pytest.raises(ValidationError):
        DriftConfig(method="energy")


def test_p_values_are_corrected_across_features_with_benjamini_hochberg() -> None:
    # six K-S tests; only f0 moved a little: p < 0.05 alone, not once six tests are counted
    rng = np.random.default_rng(3)
    pairs = [(rng.normal(0, 1, 300), rng.normal(0.15 if i == 0 else 0, 1, 300)) for i in range(6)]
    reference = pd.DataFrame({f"f{i}": ref for i, (ref, _) in enumerate(pairs)})
    current = pd.DataFrame({f"f{i}": cur for i, (_, cur) in enumerate(pairs)})
    schema = Schema(dict.fromkeys(reference.columns, "numeric"))
    report = run(reference, current, schema)
    raw = [f.p_value for f in report.features]
    assert all(f.method == "ks" for f in report.features)
    expected = scipy_stats.false_discovery_control(raw)
    for result, adjusted in zip(report.features, expected, strict=True):
        assert result.adjusted_p_value == pytest.approx(adjusted)
    first = report.feature("f0")
    assert first.p_value is not None
    assert first.p_value < 0.05
    assert first.adjusted_p_value is not None
    assert first.adjusted_p_value > 0.05
    assert not first.drifted
    uncorrected = run(reference, current, schema, DriftConfig(correction="none"))
    assert [f.drifted for f in uncorrected.features] == [True] + [False] * 5


def test_dataset_drift_is_the_share_of_drifted_features() -> None:
    reference = pd.DataFrame({name: RNG.normal(0, 1, 2000) for name in "abcd"})
    current = reference.copy()
    current["a"] += 3.0
    current["b"] += 3.0
    schema = Schema(dict.fromkeys("abcd", "numeric"))
    report = run(reference, current, schema)
    assert [f.drifted for f in report.features] == [True, True, False, False]
    assert (report.drifted_features, report.total_features, report.share) == (2, 4, 0.5)
    assert report.dataset_drift
    assert not run(reference, current, schema, DriftConfig(drift_share=0.75)).dataset_drift


def test_prediction_drift_is_reported_apart_from_features() -> None:
    reference = pd.DataFrame({"a": RNG.normal(0, 1, 2000), "score": RNG.beta(2, 5, 2000)})
    current = pd.DataFrame({"a": RNG.normal(0, 1, 2000), "score": RNG.beta(5, 2, 2000)})
    report = run(reference, current, Schema({"a": "numeric"}, prediction="score"))
    assert report.prediction is not None
    assert report.prediction.feature == "score"
    assert report.prediction.drifted
    assert report.drifted_features == 0


def test_text_drifts_through_its_descriptors_and_counts_as_one_feature() -> None:
    english = ["pays on time every month", "late once, then paid", "asked for a higher limit"]
    reference = pd.DataFrame({"notes": [english[i % 3] for i in range(1500)]})
    russian = ["платит вовремя каждый месяц", "опоздал один раз", "просил увеличить лимит"]
    current = pd.DataFrame({"notes": [russian[i % 3] for i in range(600)]})
    schema = Schema({"notes": "text"})
    report = run(reference, current, schema)
    by_name = {f.name: f for f in report.features}
    assert set(by_name) == {"notes.length", "notes.oov_rate", "notes.non_ascii", "notes.script"}
    assert by_name["notes.oov_rate"].drifted
    assert by_name["notes.non_ascii"].drifted
    assert by_name["notes.script"].drifted
    assert (report.drifted_features, report.total_features) == (1, 1)
    stable = run(reference, reference.sample(600, random_state=1), schema)
    assert not any(f.drifted for f in stable.features)


def test_profiles_alone_approximate_ks_and_wasserstein_and_say_so() -> None:
    reference = pd.DataFrame({"a": RNG.normal(0, 1, 5000)})
    current = pd.DataFrame({"a": RNG.normal(0.5, 1, 5000)})
    schema = Schema({"a": "numeric"})
    profile = profile_frame(reference, schema)
    window = profile_frame(current, schema, profile)
    approximate = compare(profile, window).feature("a")
    exact = compare(
        profile,
        window,
        reference_values={"a": reference["a"].to_numpy()},
        current_values={"a": current["a"].to_numpy()},
    ).feature("a")
    assert exact.exact
    assert not approximate.exact
    assert approximate.score == pytest.approx(exact.score, rel=0.25)
    ks_exact, ks_binned = exact.statistic("ks"), approximate.statistic("ks")
    assert ks_exact is not None
    assert ks_binned is not None
    assert ks_binned.effect_size <= ks_exact.effect_size + 1e-12  # a lower bound
    assert ks_binned.effect_size == pytest.approx(ks_exact.effect_size, abs=0.05)


def test_report_serialises_to_strict_json() -> None:
    reference = pd.DataFrame({"a": [1.0] * 50, "c": ["x"] * 50})
    current = pd.DataFrame({"a": [np.nan] * 20, "c": ["new"] * 20})
    report = run(reference, current, Schema({"a": "numeric", "c": "categorical"}))
    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert data["features"][0]["note"] == "every value in the window is missing"
    assert data["features"][1]["unseen_share"] == 1.0
    assert data["dataset_drift"] is True


def test_current_profile_must_have_the_reference_features() -> None:
    schema = Schema({"a": "numeric"})
    profile = profile_frame(pd.DataFrame({"a": [1.0, 2.0]}), schema)
    other = profile_frame(pd.DataFrame({"b": [1.0]}), Schema({"b": "numeric"}))
    with pytest.raises(ValueError, match="no feature 'a'"):
        compare(profile, other)


def test_chosen_statistics_only_computes_psi_and_the_chosen_method() -> None:
    reference = pd.DataFrame({"a": RNG.normal(0, 1, 2000), "c": RNG.choice(["x", "y"], 2000)})
    current = pd.DataFrame({"a": RNG.normal(1, 1, 2000), "c": RNG.choice(["x", "y"], 2000)})
    schema = Schema({"a": "numeric", "c": "categorical"})
    everything = run(reference, current, schema)
    chosen = run(reference, current, schema, DriftConfig(statistics="chosen"))
    assert [s.method for s in chosen.feature("a").statistics] == ["psi", "wasserstein"]
    assert [s.method for s in chosen.feature("c").statistics] == ["psi", "jensenshannon"]
    assert [s.method for s in everything.feature("a").statistics] == ["psi", "ks", "wasserstein"]
    assert chosen.feature("a").score == everything.feature("a").score


def test_threads_give_the_same_report_as_one_thread() -> None:
    reference = pd.DataFrame({name: RNG.normal(0, 1, 3000) for name in "abcdef"})
    current = pd.DataFrame({name: RNG.normal(0.1 * i, 1, 3000) for i, name in enumerate("abcdef")})
    schema = Schema(dict.fromkeys("abcdef", "numeric"))
    profile = profile_frame(reference, schema)
    window = profile_frame(current, schema, profile)
    ref = {name: reference[name].to_numpy() for name in reference.columns}
    cur = {name: current[name].to_numpy() for name in current.columns}
    one = compare(profile, window, reference_values=ref, current_values=cur)
    assert compare(profile, window, reference_values=ref, current_values=cur, workers=3) == one


def test_raw_values_of_non_numeric_features_are_ignored() -> None:
    reference = pd.DataFrame({"c": ["x", "y"] * 50})
    schema = Schema({"c": "categorical"})
    profile = profile_frame(reference, schema)
    strings = {"c": np.asarray(["x", "y"] * 50)}
    result = compare(profile, profile, reference_values=strings, current_values=strings).feature(
        "c"
    )
    assert not result.drifted
