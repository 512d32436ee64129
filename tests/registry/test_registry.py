from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path

import lightgbm
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import skops.io
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from bastion.errors import ArtifactError, InvalidInput, NotFound
from bastion.guard.ood import OODProfile
from bastion.registry import ArtifactStore, ModelVersion, Registry
from bastion.registry.signature import fingerprint
from bastion.spec import ModelRef
from bastion.store import Database
from tests.registry.conftest import REGIONS, TrainedModel

FEATURES = ["income", "region"]


def _register(registry: Registry, model: TrainedModel, name: str = "credit") -> ModelVersion:
    return registry.register(name, model.path, sample=model.frame, author="alice")


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def shift(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """A user function: skops cannot know it is safe to load."""
    return values + 1.0


def test_register_records_version_one(registry: Registry, lgbm_model: TrainedModel) -> None:
    version = _register(registry, lgbm_model)

    assert version.ref == "credit:1"
    assert version.framework == "lightgbm"
    assert version.stage == "none"
    assert version.author == "alice"
    assert version.digest == _sha256(lgbm_model.path)
    assert _sha256(version.artifact_path) == version.digest
    assert registry.versions("credit") == [version]


def test_register_infers_the_input_signature_from_the_sample(
    registry: Registry, lgbm_model: TrainedModel
) -> None:
    signature = _register(registry, lgbm_model).input_signature

    assert signature.names == FEATURES
    assert signature.rows_seen == len(lgbm_model.frame)
    income, region = signature.columns
    values = lgbm_model.frame["income"]
    assert (income.kind, income.dtype, income.nullable) == ("numeric", "float64", False)
    assert income.min == values.min()
    assert income.max == values.max()
    assert income.quantiles is not None
    assert income.quantiles["p05"] == pytest.approx(values.quantile(0.05))
    assert income.quantiles["p95"] == pytest.approx(values.quantile(0.95))
    assert (region.kind, region.dtype) == ("categorical", "category")
    assert region.categories == REGIONS


def test_register_records_outputs_fingerprint_and_libraries(
    registry: Registry, lgbm_model: TrainedModel
) -> None:
    version = _register(registry, lgbm_model)

    assert version.output_signature.task == "classification"
    assert version.output_signature.classes == [0, 1]
    assert version.data_fingerprint == fingerprint(lgbm_model.frame[FEATURES])
    assert version.library_versions["lightgbm"] == lightgbm.__version__
    assert "python" in version.library_versions


def test_register_fits_and_stores_the_ood_profile_of_the_sample(
    registry: Registry, lgbm_model: TrainedModel
) -> None:
    version = _register(registry, lgbm_model)

    assert version.reference_profile is not None
    profile = OODProfile.from_dict(version.reference_profile)
    assert profile.numeric == ("income",)
    assert profile.reference_rows == len(lgbm_model.frame)
    assert registry.get(version.ref).reference_profile == version.reference_profile


def test_register_without_a_sample_has_no_ood_profile(
    registry: Registry, lgbm_model: TrainedModel
) -> None:
    version = registry.register("credit", lgbm_model.path)

    assert version.reference_profile is None


def test_register_takes_metadata_and_time_from_the_caller(
    database: Database, tmp_path: Path, lgbm_model: TrainedModel
) -> None:
    moment = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)
    registry = Registry(database, ArtifactStore(tmp_path / "store"), clock=lambda: moment)

    version = registry.register(
        "credit",
        lgbm_model.path,
        sample=lgbm_model.frame,
        metrics={"auc": 0.91},
        tags={"team": "risk"},
        description="Retail credit",
    )

    assert registry.get("credit:1") == version
    assert version.created_at == moment
    assert (version.metrics, version.tags) == ({"auc": 0.91}, {"team": "risk"})
    assert version.description == "Retail credit"


def test_register_identical_bytes_returns_the_same_version(
    registry: Registry, lgbm_model: TrainedModel, tmp_path: Path
) -> None:
    first = _register(registry, lgbm_model)
    copy = tmp_path / "renamed.txt"
    shutil.copyfile(lgbm_model.path, copy)

    again = registry.register("credit", copy, sample=lgbm_model.frame)

    assert again == first
    assert [v.version for v in registry.versions("credit")] == [1]


def test_register_different_bytes_makes_version_two(
    registry: Registry, lgbm_model: TrainedModel, lgbm_model_v2: TrainedModel
) -> None:
    _register(registry, lgbm_model)

    second = _register(registry, lgbm_model_v2)

    assert second.version == 2
    assert second.digest == _sha256(lgbm_model_v2.path)
    assert [v.version for v in registry.versions("credit")] == [1, 2]


def test_register_numbers_versions_per_model(
    registry: Registry, lgbm_model: TrainedModel, lgbm_model_v2: TrainedModel
) -> None:
    _register(registry, lgbm_model, name="credit")

    other = _register(registry, lgbm_model_v2, name="fraud")

    assert other.ref == "fraud:1"
    assert [v.ref for v in registry.versions()] == ["credit:1", "fraud:1"]


def test_register_rejects_a_bad_model_name(registry: Registry, lgbm_model: TrainedModel) -> None:
    with pytest.raises(InvalidInput, match="model name must be"):
        registry.register("bad name", lgbm_model.path, sample=lgbm_model.frame)


def test_register_rejects_a_sample_lacking_model_columns(
    registry: Registry, lgbm_model: TrainedModel
) -> None:
    with pytest.raises(InvalidInput, match="the sample lacks columns the model needs: region"):
        registry.register("credit", lgbm_model.path, sample=lgbm_model.frame[["income"]])

    assert registry.versions() == []


def test_get_finds_a_pinned_version(
    registry: Registry, lgbm_model: TrainedModel, lgbm_model_v2: TrainedModel
) -> None:
    first = _register(registry, lgbm_model)
    _register(registry, lgbm_model_v2)

    assert registry.get("credit:1") == first
    assert registry.get(ModelRef(name="credit", version=1)) == first


def test_get_follows_a_stage(registry: Registry, lgbm_model: TrainedModel) -> None:
    _register(registry, lgbm_model)

    registry.set_stage("credit:1", "production", actor="alice")

    found = registry.get("credit@production")
    assert found.ref == "credit:1"
    assert found.stage == "production"


def test_get_unknown_reference_is_not_found(registry: Registry, lgbm_model: TrainedModel) -> None:
    _register(registry, lgbm_model)

    for ref in ("credit:2", "credit@production", "fraud:1"):
        with pytest.raises(NotFound, match="no model version matches"):
            registry.get(ref)


def test_get_malformed_reference_is_invalid_input(registry: Registry) -> None:
    with pytest.raises(InvalidInput, match="NAME:VERSION"):
        registry.get("credit#1")


def test_set_stage_to_production_archives_the_previous_one(
    registry: Registry, lgbm_model: TrainedModel, lgbm_model_v2: TrainedModel
) -> None:
    _register(registry, lgbm_model)
    _register(registry, lgbm_model_v2)
    registry.set_stage("credit:1", "production", actor="alice")

    promoted = registry.set_stage("credit:2", "production", actor="bob")

    assert promoted.stage == "production"
    assert registry.get("credit:1").stage == "archived"
    assert registry.get("credit@production").version == 2
    history = [
        (t.version, t.from_stage, t.to_stage, t.actor) for t in registry.stage_history("credit")
    ]
    assert history == [
        (1, "none", "production", "alice"),
        (1, "production", "archived", "bob"),
        (2, "none", "production", "bob"),
    ]


def test_set_stage_to_the_current_stage_records_nothing(
    registry: Registry, lgbm_model: TrainedModel
) -> None:
    _register(registry, lgbm_model)
    registry.set_stage("credit:1", "staging", actor="alice")

    registry.set_stage("credit:1", "staging", actor="alice")

    assert len(registry.stage_history("credit")) == 1


def test_set_stage_allows_several_versions_in_staging(
    registry: Registry, lgbm_model: TrainedModel, lgbm_model_v2: TrainedModel
) -> None:
    _register(registry, lgbm_model)
    _register(registry, lgbm_model_v2)

    registry.set_stage("credit:1", "staging", actor="alice")
    registry.set_stage("credit:2", "staging", actor="alice")

    assert [v.stage for v in registry.versions("credit")] == ["staging", "staging"]
    assert registry.get("credit@staging").version == 2


def test_set_stage_rejects_an_unknown_stage(registry: Registry, lgbm_model: TrainedModel) -> None:
    _register(registry, lgbm_model)

    with pytest.raises(InvalidInput, match=r"stage must be one of .* got 'live'"):
        registry.set_stage("credit:1", "live")

    assert registry.stage_history("credit") == []


def test_set_stage_of_an_unknown_version_is_not_found(registry: Registry) -> None:
    with pytest.raises(NotFound):
        registry.set_stage("credit:1", "production")


def test_load_predicts_like_the_booster(registry: Registry, lgbm_model: TrainedModel) -> None:
    version = _register(registry, lgbm_model)
    frame = lgbm_model.frame[FEATURES]

    adapter = registry.load(registry.get("credit:1"))

    probabilities = adapter.predict(frame)
    expected = lgbm_model.booster.predict(frame)
    assert probabilities.shape == (len(frame), 2)
    np.testing.assert_allclose(probabilities[:, 1], expected, rtol=1e-12)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    assert adapter.classes == version.output_signature.classes


def test_load_refuses_a_modified_artifact(registry: Registry, lgbm_model: TrainedModel) -> None:
    version = _register(registry, lgbm_model)
    stored = version.artifact_path
    original = stored.read_bytes()
    tampered = original.replace(b"num_leaves=", b"num_leaves=9", 1)
    assert tampered != original
    stored.chmod(0o644)
    stored.write_bytes(tampered)

    with pytest.raises(ArtifactError, match="modified since registration"):
        registry.load(version)


def test_load_refuses_a_missing_artifact(registry: Registry, lgbm_model: TrainedModel) -> None:
    version = _register(registry, lgbm_model)
    version.artifact_path.unlink()

    with pytest.raises(ArtifactError, match="missing"):
        registry.load(version)


@pytest.mark.parametrize("framework", ["auto", "lightgbm"])
def test_register_refuses_a_corrupt_file(
    registry: Registry, tmp_path: Path, lgbm_model: TrainedModel, framework: str
) -> None:
    corrupt = tmp_path / "model.txt"
    corrupt.write_bytes(np.random.default_rng(3).bytes(4096))

    with pytest.raises(ArtifactError, match=r"model\.txt"):
        registry.register("credit", corrupt, framework=framework, sample=lgbm_model.frame)

    assert registry.versions() == []


def test_register_refuses_a_missing_file(registry: Registry, tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match="no artifact file"):
        registry.register("credit", tmp_path / "nope.txt")


def test_register_needs_a_sample_when_the_model_has_no_feature_names(
    registry: Registry, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 3))
    model = LogisticRegression().fit(features, (features[:, 0] > 0).astype(int))
    path = tmp_path / "unnamed.skops"
    skops.io.dump(model, path)

    with pytest.raises(InvalidInput, match="does not declare its input columns"):
        registry.register("unnamed", path)

    assert registry.versions() == []


def test_register_accepts_a_sample_for_a_model_without_feature_names(
    registry: Registry, tmp_path: Path
) -> None:
    rng = np.random.default_rng(0)
    sample = pd.DataFrame(rng.normal(size=(60, 2)), columns=["a", "b"])
    model = LogisticRegression().fit(sample.to_numpy(), (sample["a"] > 0).astype(int))
    path = tmp_path / "unnamed.skops"
    skops.io.dump(model, path)

    version = registry.register("unnamed", path, sample=sample)

    assert version.framework == "sklearn"
    assert version.input_signature.names == ["a", "b"]


def test_register_refuses_untrusted_skops_types_and_names_them(
    registry: Registry, tmp_path: Path
) -> None:
    sample = pd.DataFrame({"a": np.linspace(-1, 1, 40), "b": np.linspace(2, 3, 40)})
    pipeline = make_pipeline(FunctionTransformer(shift), LogisticRegression())
    pipeline.fit(sample, (sample["a"] > 0).astype(int))
    path = tmp_path / "pipeline.skops"
    skops.io.dump(pipeline, path)

    with pytest.raises(ArtifactError, match="does not trust") as caught:
        registry.register("piped", path, sample=sample)

    assert f"{__name__}.shift" in caught.value.message
    assert registry.versions() == []
