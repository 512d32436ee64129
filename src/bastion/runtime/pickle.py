"""Estimators saved with pickle or joblib, loaded only when the user said they trust the file.

Unpickling runs whatever code the file names, so trust is asked for explicitly at
registration; the registry checks the file's sha256 against the registered one before load.
"""

from __future__ import annotations

from pathlib import Path

from bastion.errors import ArtifactError
from bastion.runtime.adapter import ArtifactFormat, LoadOptions, ModelAdapter
from bastion.runtime.estimator import EstimatorAdapter

_SUFFIXES = (".pkl", ".pickle", ".joblib")


class PickleFormat(ArtifactFormat):
    name = "pickle"
    libraries = ("joblib",)

    def sniff(self, path: Path) -> bool:
        return path.is_file() and path.suffix in _SUFFIXES

    def load(self, path: Path, options: LoadOptions) -> ModelAdapter:
        if not options.trust_pickle:
            raise ArtifactError(
                f"{path.name} was not loaded: pickle files can run arbitrary code; "
                "register with --trust-pickle only if you trust its origin"
            )
        import joblib

        try:
            estimator = joblib.load(path)
        except Exception as exc:  # unpickling raises whatever the damaged stream provokes
            raise ArtifactError(
                f"{path.name} could not be unpickled: {type(exc).__name__}: {exc}"
            ) from exc
        return EstimatorAdapter(estimator, self.name, options.classes)
