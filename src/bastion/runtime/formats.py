"""The artifact formats Bastion can serve, and how a file's format is recognised."""

from __future__ import annotations

from pathlib import Path

from bastion.errors import ArtifactError
from bastion.runtime.adapter import ArtifactFormat
from bastion.runtime.callable import CallableFormat
from bastion.runtime.lightgbm import LightGBMFormat
from bastion.runtime.onnx import ONNXFormat
from bastion.runtime.pickle import PickleFormat
from bastion.runtime.sklearn import SkopsFormat
from bastion.runtime.xgboost import XGBoostFormat

#: Every format, in the order `detect_format` tries them. Pickle comes last: it is only
#: chosen for `.pkl`/`.joblib` files and only loads with explicit trust.
FORMATS: dict[str, ArtifactFormat] = {
    fmt.name: fmt
    for fmt in (
        SkopsFormat(),
        LightGBMFormat(),
        XGBoostFormat(),
        ONNXFormat(),
        CallableFormat(),
        PickleFormat(),
    )
}


def get_format(name: str) -> ArtifactFormat:
    try:
        return FORMATS[name]
    except KeyError:
        allowed = ", ".join(sorted(FORMATS))
        raise ArtifactError(f"framework must be one of auto, {allowed}; got {name!r}") from None


def detect_format(path: Path) -> ArtifactFormat:
    """The format of the artifact at `path`, or `ArtifactError` saying what was tried."""
    for fmt in FORMATS.values():
        if fmt.sniff(path):
            return fmt
    allowed = ", ".join(sorted(FORMATS))
    raise ArtifactError(
        f"cannot tell the framework of {path.name}: pass --framework (one of {allowed})"
    )
