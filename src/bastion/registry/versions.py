"""`ModelVersion`: the immutable view of one registered version that the rest of Bastion uses."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from bastion.registry.signature import InputSignature, OutputSignature
from bastion.runtime.adapter import LoadOptions
from bastion.store.tables import ModelVersionRow, StageTransitionRow


@dataclass(frozen=True)
class ModelVersion:
    name: str
    version: int
    digest: str
    framework: str
    artifact_path: Path
    options: LoadOptions
    library_versions: dict[str, str]
    input_signature: InputSignature
    output_signature: OutputSignature
    data_fingerprint: str | None
    metrics: dict[str, float]
    tags: dict[str, str]
    description: str | None
    stage: str
    author: str | None
    created_at: datetime
    #: the OOD profile fitted on the registration sample (`OODProfile.to_dict()`), or None
    reference_profile: dict[str, Any] | None = None
    #: the score calibration applied at serving (`Calibration.to_dict()`), or None
    calibration: dict[str, Any] | None = None

    @property
    def ref(self) -> str:
        return f"{self.name}:{self.version}"

    @classmethod
    def from_row(cls, row: ModelVersionRow) -> ModelVersion:
        return cls(
            name=row.model_name,
            version=row.version,
            digest=row.digest,
            framework=row.framework,
            artifact_path=Path(row.artifact_path),
            options=LoadOptions.from_dict(row.artifact_options),
            library_versions=dict(row.library_versions),
            input_signature=InputSignature.model_validate(row.input_signature),
            output_signature=OutputSignature.model_validate(row.output_signature),
            data_fingerprint=row.data_fingerprint,
            metrics=dict(row.metrics),
            tags=dict(row.tags),
            description=row.description,
            stage=row.stage,
            author=row.author,
            created_at=row.created_at,
            reference_profile=row.reference_profile,
            calibration=row.calibration,
        )

    def summary(self) -> dict[str, Any]:
        """The JSON shape used by `bastion models show --json` and the admin API."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.digest,
            "framework": self.framework,
            "stage": self.stage,
            "task": self.output_signature.task,
            "classes": self.output_signature.classes,
            "inputs": [c.model_dump(exclude_none=True) for c in self.input_signature.columns],
            "library_versions": self.library_versions,
            "data_fingerprint": self.data_fingerprint,
            "metrics": self.metrics,
            "tags": self.tags,
            "description": self.description,
            "author": self.author,
            "created_at": self.created_at.isoformat(),
            # the method and its provenance (ECE, rows); the map itself can be long
            "calibration": None
            if self.calibration is None
            else {
                "method": self.calibration.get("method"),
                **dict(self.calibration.get("info") or {}),
            },
        }


@dataclass(frozen=True)
class StageTransition:
    name: str
    version: int
    from_stage: str
    to_stage: str
    actor: str | None
    at: datetime

    @classmethod
    def from_row(cls, row: StageTransitionRow) -> StageTransition:
        return cls(row.model_name, row.version, row.from_stage, row.to_stage, row.actor, row.at)
