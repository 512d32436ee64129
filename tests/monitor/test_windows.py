"""Windows over real decisions posted through the app: drift, performance, storage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bastion.errors import InvalidInput
from bastion.monitor.windows import WindowService
from tests.monitor.monitoring import ROWS, Logged, label


def test_a_shifted_feature_is_flagged_and_stable_ones_are_not(logged: Logged) -> None:
    result = logged.service.compute("credit", logged.spec.deployments["credit"], rows=ROWS)

    assert result.rows == ROWS
    assert result.model_ref == "credit:1"
    assert result.drift is not None
    drifted = {f.name for f in result.drift.features if f.drifted}
    assert drifted == {"income"}
    income = result.drift.feature("income")
    assert income.method == "ks"
    assert income.exact, "raw values make K-S exact"
    assert result.sampling["exact"] is True


def test_a_window_of_stable_decisions_has_no_drift(logged: Logged) -> None:
    result = logged.service.compute(
        "credit", logged.spec.deployments["credit"], start=logged.started, end=logged.middle
    )

    assert result.rows == ROWS
    assert result.drift is not None
    assert [f.name for f in result.drift.features if f.drifted] == []
    assert result.drift.prediction is not None
    assert not result.drift.prediction.drifted
    assert (result.started_at, result.ended_at) == (logged.started, logged.middle)


def test_feedback_gives_performance_with_coverage_and_cbpe_estimates(logged: Logged) -> None:
    half = ROWS // 2
    label(logged.service.database, logged.shifted[:half], logged.shifted_labels[:half])

    result = logged.service.compute("credit", logged.spec.deployments["credit"], rows=ROWS)

    assert result.performance is not None
    assert result.estimated is not None
    assert result.performance["label_coverage"] == pytest.approx(0.5)
    assert result.performance["labelled"] == half
    assert 0.5 < result.performance["roc_auc"] <= 1.0
    assert result.performance["precision"] is not None, "the policy bands set the threshold"
    assert result.estimated["estimate"] is True
    assert 0.5 < result.estimated["roc_auc"] <= 1.0


def test_stored_windows_read_back_newest_first(logged: Logged) -> None:
    deployment = logged.spec.deployments["credit"]
    older = logged.service.compute("credit", deployment, start=logged.started, end=logged.middle)
    newer = logged.service.compute("credit", deployment, rows=ROWS)

    ids = [logged.service.store(older), logged.service.store(newer)]

    listed = logged.service.list("credit", 10)
    assert [w.id for w in listed] == ids[::-1]
    assert logged.service.latest("credit") == listed[0]
    stored = listed[0].to_dict()
    assert {k: v for k, v in stored.items() if k not in ("id", "created_at")} == {
        k: v for k, v in newer.to_dict().items() if k not in ("id", "created_at")
    }
    assert listed[0].profile.to_dict()["features"] == newer.profile.to_dict()["features"]
    assert logged.service.list("other", 10) == []


def test_chunked_sampled_reading_keeps_counts_exact(logged: Logged) -> None:
    deployment = logged.spec.deployments["credit"]
    whole = logged.service.compute("credit", deployment, rows=ROWS)
    small = WindowService(
        logged.service.database, logged.service.registry, chunk_rows=7, raw_sample_rows=50
    )

    chunked = small.compute("credit", deployment, rows=ROWS)

    assert chunked.rows == whole.rows
    assert chunked.profile.features["channel"] == whole.profile.features["channel"]
    assert chunked.drift is not None
    assert whole.drift is not None
    psi = [f.statistic("psi") for f in (chunked.drift.feature("age"), whole.drift.feature("age"))]
    assert psi[0] is not None
    assert psi[1] is not None
    assert psi[0].score == pytest.approx(psi[1].score, abs=1e-12)
    assert chunked.sampling == {
        "window_rows": ROWS,
        "window_sample_rows": 50,
        "reference_rows": whole.sampling["reference_rows"],
        "reference_sample_rows": whole.sampling["reference_sample_rows"],
        "exact": False,
    }


def test_small_and_empty_windows_are_stored_but_not_judged(logged: Logged) -> None:
    deployment = logged.spec.deployments["credit"]
    small = logged.service.compute("credit", deployment, rows=10)
    later = datetime.now(UTC) + timedelta(hours=1)
    empty = logged.service.compute("credit", deployment, start=later, end=later + timedelta(1))

    assert small.rows == 10
    assert small.drift is None, "min_rows is 50"
    assert empty.rows == 0
    assert empty.drift is None
    assert empty.model_ref == "credit:1"
    assert empty.performance is not None
    assert empty.performance["label_coverage"] == 0.0
    logged.service.store(empty)


def test_bad_window_requests_are_refused(logged: Logged) -> None:
    deployment = logged.spec.deployments["credit"]
    with pytest.raises(InvalidInput, match="not both"):
        logged.service.compute("credit", deployment, start=logged.started, rows=5)
    with pytest.raises(InvalidInput, match="must start before it ends"):
        logged.service.compute("credit", deployment, start=logged.middle, end=logged.started)
