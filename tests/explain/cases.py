"""Model cases for the explainer contract: the shared tiny models, loaded, with a version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd

from bastion.registry.signature import OutputSignature, infer_input_signature
from bastion.registry.versions import ModelVersion
from bastion.runtime.adapter import LoadOptions, ModelAdapter
from tests.model_cases import Case


@dataclass
class Loaded:
    """A model case with its adapter and the version the registry would hold for it."""

    case: Case
    adapter: ModelAdapter
    version: ModelVersion

    @property
    def frame(self) -> pd.DataFrame:
        return self.case.frame

    def records(self, rows: int = 20) -> list[dict[str, Any]]:
        return records(self.frame.head(rows))


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The frame's rows as request records: NaN becomes None, as in a JSON request."""
    return [
        {str(k): (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in frame.to_dict("records")
    ]


def load(case: Case, tmp: Path) -> Loaded:
    adapter = case.load()
    version = ModelVersion(
        name="m",
        version=1,
        digest="0" * 64,
        framework=case.format_name,
        artifact_path=case.path,
        options=case.options,
        library_versions={},
        input_signature=infer_input_signature(case.frame),
        output_signature=OutputSignature(task=case.task, classes=list(case.classes)),
        data_fingerprint=None,
        metrics={},
        tags={},
        description=None,
        stage="none",
        author=None,
        created_at=datetime.now(UTC),
    )
    return Loaded(case, adapter, version)


def version_for(frame: pd.DataFrame) -> ModelVersion:
    """The version the registry would hold for a binary classifier trained on `frame`."""
    return ModelVersion(
        name="credit",
        version=1,
        digest="0" * 64,
        framework="sklearn",
        artifact_path=Path("model.skops"),
        options=LoadOptions(),
        library_versions={},
        input_signature=infer_input_signature(frame),
        output_signature=OutputSignature(task="classification", classes=[0, 1]),
        data_fingerprint=None,
        metrics={},
        tags={},
        description=None,
        stage="none",
        author=None,
        created_at=datetime.now(UTC),
    )
