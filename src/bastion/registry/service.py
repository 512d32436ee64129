"""The model registry: register, look up, stage and load model versions."""

from __future__ import annotations

import getpass
import platform
from collections.abc import Callable
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, defer

import bastion
from bastion.errors import ArtifactError, Conflict, InvalidInput, NotFound
from bastion.guard.ood import OODProfile
from bastion.registry.artifacts import ArtifactStore
from bastion.registry.signature import (
    InputSignature,
    OutputSignature,
    fingerprint,
    infer_input_signature,
    signature_from_names,
)
from bastion.registry.versions import ModelVersion, StageTransition
from bastion.runtime import LoadOptions, ModelAdapter, detect_format, get_format
from bastion.runtime.adapter import ArtifactFormat
from bastion.runtime.callable import resolve_target
from bastion.spec import NAME_PATTERN, STAGES, ModelRef
from bastion.store import Database
from bastion.store.audit import AuditLog
from bastion.store.tables import ModelRow, ModelVersionRow, StageTransitionRow

Clock = Callable[[], datetime]

#: stages that at most one version of a model holds at a time
EXCLUSIVE_STAGES = ("production",)


def utcnow() -> datetime:
    return datetime.now(UTC)


def _library_versions(fmt: ArtifactFormat) -> dict[str, str]:
    versions = {"python": platform.python_version(), "bastion": bastion.__version__}
    for library in fmt.libraries:
        try:
            versions[library] = metadata.version(library)
        except metadata.PackageNotFoundError:
            versions[library] = "not installed"
    return versions


def label_column_of(sample: pd.DataFrame | None, label_column: str | None) -> pd.Series[Any] | None:
    """The sample's labels (None without a label column), or a clear error."""
    if label_column is None:
        return None
    if sample is None:
        raise InvalidInput("a label column needs a sample (--sample) to take the labels from")
    if label_column not in sample.columns:
        raise InvalidInput(f"the sample has no label column {label_column!r}")
    return sample[label_column]


#: the drift reference can hold megabytes of raw sample values: loaded only when asked for
_LIGHT = defer(ModelVersionRow.monitor_profile)
#: the settings kept beside an immutable version, each replaced through `replace_setting`
Setting = Literal["calibration", "monitor_profile"]


def _parse_ref(ref: ModelRef | str) -> ModelRef:
    if isinstance(ref, ModelRef):
        return ref
    try:
        return ModelRef.parse(ref)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from exc


class Registry:
    """Registers artifacts as immutable, content-addressed versions and serves them back."""

    def __init__(self, database: Database, artifacts: ArtifactStore, clock: Clock = utcnow) -> None:
        self.database = database
        self.artifacts = artifacts
        self.clock = clock

    def register(
        self,
        name: str,
        source: str | Path,
        *,
        framework: str = "auto",
        sample: pd.DataFrame | None = None,
        options: LoadOptions | None = None,
        metrics: dict[str, float] | None = None,
        tags: dict[str, str] | None = None,
        description: str | None = None,
        author: str | None = None,
        label_column: str | None = None,
    ) -> ModelVersion:
        """Store `source` as a new version of model `name` (or return the identical one).

        `source` is an artifact file, or ``module:attr`` naming a Python callable. The model
        is loaded and, with a `sample`, run once before anything is recorded, so a version
        that cannot serve is never registered. The sample also becomes the version's OOD
        profile and its drift reference (`bastion.monitor.reference`); `label_column` names
        the sample's true labels, kept with the drift reference for label-free estimates.
        """
        if not NAME_PATTERN.match(name):
            raise InvalidInput(f"model name must be letters, digits, '.', '_' or '-', got {name!r}")
        options = options or LoadOptions()
        path, fmt, options = self._locate(source, framework, options)
        digest, stored = self.artifacts.put(path)
        adapter = fmt.load(stored, options)
        labels = label_column_of(sample, label_column)
        if sample is not None and label_column is not None:
            sample = sample.drop(columns=[label_column])
        signature, output, data_fingerprint, profile = self._describe(adapter, sample)
        monitor_profile = None
        if sample is not None:
            # Imported here: the monitor's statistics stack is not needed to read the registry.
            from bastion.monitor.reference import build_reference

            monitor_profile = build_reference(sample, signature, adapter, labels=labels).to_dict()
        now = self.clock()
        author = author or getpass.getuser()
        with self.database.transaction() as session:
            existing = session.scalar(
                select(ModelVersionRow)
                .options(_LIGHT)
                .where(ModelVersionRow.model_name == name, ModelVersionRow.digest == digest)
            )
            if existing is not None:
                return ModelVersion.from_row(existing)
            if session.get(ModelRow, name) is None:
                session.add(ModelRow(name=name, created_at=now))
                session.flush()
            latest = session.scalar(
                select(func.max(ModelVersionRow.version)).where(ModelVersionRow.model_name == name)
            )
            row = ModelVersionRow(
                model_name=name,
                version=(latest or 0) + 1,
                digest=digest,
                framework=fmt.name,
                artifact_path=str(stored.resolve()),
                artifact_options=options.as_dict(),
                library_versions=_library_versions(fmt),
                input_signature=signature.model_dump(mode="json"),
                output_signature=output.model_dump(mode="json"),
                data_fingerprint=data_fingerprint,
                metrics=dict(metrics or {}),
                tags=dict(tags or {}),
                description=description,
                stage="none",
                author=author,
                created_at=now,
                reference_profile=profile,
                monitor_profile=monitor_profile,
            )
            session.add(row)
            try:
                session.flush()
            except IntegrityError as exc:
                raise Conflict(
                    f"another registration of {name} happened at the same time; try again"
                ) from exc
            version = ModelVersion.from_row(row)
            AuditLog.append(
                session,
                actor=author,
                action="model.registered",
                target=version.ref,
                after=version.summary(),
                details={"framework": version.framework, "sha256": version.digest},
                at=now,
            )
            return version

    def _locate(
        self, source: str | Path, framework: str, options: LoadOptions
    ) -> tuple[Path, ArtifactFormat, LoadOptions]:
        text = str(source)
        if framework == "callable" or (
            framework == "auto" and ":" in text and not Path(text).exists()
        ):
            fmt = get_format("callable")
            extra = {**options.extra, "target": text}
            options = LoadOptions(
                options.trusted_types, options.trust_pickle, options.classes, extra
            )
            return resolve_target(text), fmt, options
        path = Path(text)
        if not path.is_file():
            raise ArtifactError(f"no artifact file at {path}")
        fmt = detect_format(path) if framework == "auto" else get_format(framework)
        return path, fmt, options

    def _describe(
        self, adapter: ModelAdapter, sample: pd.DataFrame | None
    ) -> tuple[InputSignature, OutputSignature, str | None, dict[str, Any] | None]:
        """Signatures, the sample's fingerprint and its OOD profile (None without a sample)."""
        output = OutputSignature(task=adapter.task, classes=list(adapter.classes))
        if sample is None:
            if not adapter.feature_names:
                raise InvalidInput(
                    "this model does not declare its input columns: pass a sample or training "
                    "frame (--sample data.csv) so Bastion knows what to expect"
                )
            return signature_from_names(adapter.feature_names), output, None, None
        columns = adapter.feature_names or [str(c) for c in sample.columns]
        missing = [c for c in columns if c not in sample.columns]
        if missing:
            raise InvalidInput(f"the sample lacks columns the model needs: {', '.join(missing)}")
        frame = sample[columns]
        try:
            trial = adapter.predict(frame.head(8))
        except Exception as exc:
            raise ArtifactError(
                f"the model failed on the first rows of the sample: {type(exc).__name__}: {exc}"
            ) from exc
        expected = (
            (min(8, len(frame)), len(adapter.classes))
            if adapter.task == "classification"
            else (min(8, len(frame)),)
        )
        if trial.shape != expected or not np.all(np.isfinite(trial)):
            raise ArtifactError(
                f"the model returned shape {trial.shape} on the sample, expected {expected} "
                "finite values"
            )
        signature = infer_input_signature(frame)
        profile = OODProfile.fit(frame, signature, seed=0).to_dict()
        return signature, output, fingerprint(frame), profile

    def get(self, ref: ModelRef | str) -> ModelVersion:
        """The version `ref` names: ``name:3`` exactly, or the newest ``name@stage``."""
        ref = _parse_ref(ref)
        with self.database.transaction() as session:
            query = (
                select(ModelVersionRow)
                .options(_LIGHT)
                .where(ModelVersionRow.model_name == ref.name)
            )
            if ref.version is not None:
                query = query.where(ModelVersionRow.version == ref.version)
            else:
                query = query.where(ModelVersionRow.stage == ref.stage)
            row = session.scalar(query.order_by(ModelVersionRow.version.desc()).limit(1))
            if row is None:
                raise NotFound(f"no model version matches {ref}")
            return ModelVersion.from_row(row)

    def versions(self, name: str | None = None) -> list[ModelVersion]:
        """Every version of `name` (or of every model), oldest first."""
        with self.database.transaction() as session:
            query = (
                select(ModelVersionRow)
                .options(_LIGHT)
                .order_by(ModelVersionRow.model_name, ModelVersionRow.version)
            )
            if name is not None:
                query = query.where(ModelVersionRow.model_name == name)
            return [ModelVersion.from_row(row) for row in session.scalars(query)]

    def set_stage(
        self, ref: ModelRef | str, stage: str, *, actor: str | None = None
    ) -> ModelVersion:
        """Move a version to `stage`. Moving one to production archives the previous one."""
        if stage not in STAGES:
            raise InvalidInput(f"stage must be one of {', '.join(STAGES)}, got {stage!r}")
        target = self.get(ref)
        now = self.clock()
        actor = actor or getpass.getuser()
        with self.database.transaction() as session:
            rows = session.scalars(
                select(ModelVersionRow)
                .options(_LIGHT)
                .where(ModelVersionRow.model_name == target.name)
                .order_by(ModelVersionRow.version)
                .with_for_update()
            ).all()
            for row in rows:
                if row.version == target.version:
                    self._move(session, row, stage, actor, now)
                elif stage in EXCLUSIVE_STAGES and row.stage == stage:
                    self._move(session, row, "archived", actor, now)
            updated = next(r for r in rows if r.version == target.version)
            return ModelVersion.from_row(updated)

    @staticmethod
    def _move(
        session: Session, row: ModelVersionRow, stage: str, actor: str, now: datetime
    ) -> None:
        """Move `row` to `stage`, keeping the transition in its history and the audit log."""
        if row.stage == stage:
            return
        old = row.stage
        session.add(
            StageTransitionRow(
                model_name=row.model_name,
                version=row.version,
                from_stage=row.stage,
                to_stage=stage,
                actor=actor,
                at=now,
            )
        )
        row.stage = stage
        AuditLog.append(
            session,
            actor=actor,
            action="model.stage_changed",
            target=f"{row.model_name}:{row.version}",
            before={"stage": old},
            after={"stage": stage},
            details={"from": old, "to": stage},
            at=now,
        )

    def set_calibration(
        self, ref: ModelRef | str, calibration: dict[str, Any] | None, *, actor: str
    ) -> ModelVersion:
        """Store (or, with None, remove) the score calibration serving applies to `ref`.

        The artifact stays immutable; the calibration is a reviewed setting next to it, so
        the change is audited (``model.calibration_set``) with digests of the old and new
        maps. The map is validated first (`Calibration.from_dict`), so serving never reads
        one it cannot apply; it must belong to a classifier.
        """
        # Imported here: `bastion.policy` builds on the registry, not the other way round.
        from bastion.policy.calibration import Calibration

        if calibration is not None:
            calibration = Calibration.from_dict(calibration).to_dict()
        target = self.get(ref)
        if calibration is not None and target.output_signature.task != "classification":
            raise InvalidInput(
                f"only classifier scores can be calibrated; {target.ref} is a "
                f"{target.output_signature.task} model"
            )
        return self.replace_setting(
            target,
            "calibration",
            calibration,
            action="model.calibration_set",
            actor=actor,
            details=lambda before: {
                "from": None if before is None else before.get("method"),
                "to": None if calibration is None else calibration["method"],
            },
        )

    def replace_setting(
        self,
        target: ModelVersion,
        setting: Setting,
        value: dict[str, Any] | None,
        *,
        action: str,
        actor: str,
        details: Callable[[dict[str, Any] | None], dict[str, Any]],
    ) -> ModelVersion:
        """Replace one reviewed setting kept beside an immutable version (its calibration,
        its drift reference), audited as `action` with digests of the old and new value;
        `details` sees the old value."""
        with self.database.transaction() as session:
            row = session.scalar(
                select(ModelVersionRow)
                .options(_LIGHT)
                .where(
                    ModelVersionRow.model_name == target.name,
                    ModelVersionRow.version == target.version,
                )
                .with_for_update()
            )
            if row is None:
                raise NotFound(f"no model version matches {target.ref}")
            before: dict[str, Any] | None = getattr(row, setting)
            setattr(row, setting, value)
            AuditLog.append(
                session,
                actor=actor,
                action=action,
                target=target.ref,
                before=before,
                after=value,
                details=details(before),
                at=self.clock(),
            )
            session.flush()
            return ModelVersion.from_row(row)

    def stage_history(self, name: str) -> list[StageTransition]:
        with self.database.transaction() as session:
            rows = session.scalars(
                select(StageTransitionRow)
                .where(StageTransitionRow.model_name == name)
                .order_by(StageTransitionRow.id)
            )
            return [StageTransition.from_row(row) for row in rows]

    def load(self, version: ModelVersion) -> ModelAdapter:
        """Load a version for serving, after re-checking its artifact's sha256."""
        path = self.artifacts.verified(version.digest, version.artifact_path)
        return get_format(version.framework).load(path, version.options)
