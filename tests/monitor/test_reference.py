"""The drift reference: computed at registration, replaced by `set_monitor_reference`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from bastion.demo.data import FEATURES, LABEL
from bastion.demo.train import TrainedModel
from bastion.errors import InvalidInput, NotFound
from bastion.monitor import reference as reference_module
from bastion.monitor.reference import Reference, binary_labels
from bastion.monitor.sketches import CategoricalSketch, NumericSketch
from bastion.monitor.windows import WindowService
from bastion.registry import Registry
from bastion.registry.monitoring import set_monitor_reference
from bastion.store.tables import AuditEventRow, ModelVersionRow


def _stored(registry: Registry, version: int = 1) -> dict[str, object] | None:
    with registry.database.transaction() as session:
        return session.scalar(
            select(ModelVersionRow.monitor_profile).where(ModelVersionRow.version == version)
        )


def test_registration_with_a_labelled_sample_stores_the_reference(
    registry: Registry, credit_model: tuple[Path, TrainedModel]
) -> None:
    path, trained = credit_model

    registry.register("credit", path, sample=trained.test_frame, label_column=LABEL)

    stored = _stored(registry)
    assert stored is not None
    reference = Reference.from_dict(stored)
    assert set(reference.profile.features) == set(FEATURES), "the label is not a feature"
    assert isinstance(reference.profile.features["income"], NumericSketch)
    assert isinstance(reference.profile.features["channel"], CategoricalSketch)
    assert reference.profile.rows == len(trained.test_frame)
    # the prediction distribution is the model's positive-class probability
    direct = trained.booster.predict(trained.test_frame[FEATURES])
    assert reference.profile.prediction_name == "score"
    assert reference.scores is not None
    np.testing.assert_allclose(reference.scores, direct, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(reference.labels, trained.test_frame[LABEL].to_numpy())
    assert reference.exact
    assert reference.sample_rows == len(trained.test_frame)
    assert reference.metrics["roc_auc"] == pytest.approx(trained.metrics["roc_auc"], abs=1e-9)


def test_registration_without_labels_keeps_values_but_no_labels(
    registry: Registry, credit_model: tuple[Path, TrainedModel]
) -> None:
    path, trained = credit_model

    registry.register("credit", path, sample=trained.test_frame[FEATURES])

    reference = Reference.from_dict(_stored(registry) or {})
    assert reference.labels is None
    assert reference.metrics == {}
    np.testing.assert_array_equal(
        reference.values["income"], trained.test_frame["income"].to_numpy()
    )


def test_registration_without_a_sample_has_no_reference_and_windows_say_how_to_add_one(
    registry: Registry,
) -> None:
    version = registry.register("fragile", "tests.serving.fragile_model:FragileModel")

    assert _stored(registry) is None
    with pytest.raises(NotFound, match="bastion monitor reference fragile:1 --data"):
        WindowService(registry.database, registry).reference(version.name, version.version)


def test_a_large_reference_keeps_a_bounded_seeded_sample(
    registry: Registry,
    credit_model: tuple[Path, TrainedModel],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path, trained = credit_model
    monkeypatch.setattr(reference_module, "SAMPLE_ROWS", 100)

    registry.register("credit", path, sample=trained.test_frame, label_column=LABEL)

    reference = Reference.from_dict(_stored(registry) or {})
    assert reference.sample_rows == 100
    assert reference.sample_of == len(trained.test_frame)
    assert not reference.exact
    assert reference.profile.rows == len(trained.test_frame), "the profile uses every row"
    # values and labels are the same rows: each sampled income is one of the reference's
    assert set(reference.values["income"][np.isfinite(reference.values["income"])]) <= set(
        trained.test_frame["income"]
    )


def test_set_monitor_reference_replaces_it_and_is_audited(
    registry: Registry, credit_model: tuple[Path, TrainedModel]
) -> None:
    path, trained = credit_model
    version = registry.register("credit", path, sample=trained.test_frame[FEATURES])

    replaced = set_monitor_reference(
        registry, version.ref, trained.test_frame.head(300), label_column=LABEL, actor="ann"
    )

    stored = Reference.from_dict(_stored(registry) or {})
    assert stored.profile.rows == replaced.profile.rows == 300
    assert stored.labels is not None
    with registry.database.transaction() as session:
        actions = session.scalars(select(AuditEventRow.action).order_by(AuditEventRow.id)).all()
    assert actions[-1] == "model.monitor_reference_set"


def test_reference_errors_name_the_problem(
    registry: Registry, credit_model: tuple[Path, TrainedModel]
) -> None:
    path, trained = credit_model
    with pytest.raises(InvalidInput, match="no label column 'outcome'"):
        registry.register("credit", path, sample=trained.test_frame, label_column="outcome")
    version = registry.register("credit", path, sample=trained.test_frame[FEATURES])
    with pytest.raises(InvalidInput, match="lacks the model's columns: income"):
        set_monitor_reference(
            registry, version.ref, trained.test_frame.drop(columns=["income"]), actor="ann"
        )
    with pytest.raises(InvalidInput, match="label 'maybe' is not one of the model's classes"):
        binary_labels(["maybe"], [0, 1])
