"""scikit-learn estimators and pipelines saved with skops, loaded without pickle.

skops refuses any type it does not know to be safe unless the user names it as trusted;
Bastion surfaces that list at registration so the user decides, once, with the file in front
of them.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

from bastion.errors import ArtifactError
from bastion.runtime.adapter import ArtifactFormat, LoadOptions, ModelAdapter
from bastion.runtime.estimator import EstimatorAdapter


def untrusted_types(path: Path) -> list[str]:
    """Types in a skops file that skops does not trust by default."""
    import skops.io

    try:
        return sorted(skops.io.get_untrusted_types(file=path))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as exc:
        raise ArtifactError(f"{path.name} is not a readable skops file: {exc}") from exc


class SkopsFormat(ArtifactFormat):
    name = "sklearn"
    libraries = ("scikit-learn", "skops")

    def sniff(self, path: Path) -> bool:
        return path.is_file() and path.suffix == ".skops" and zipfile.is_zipfile(path)

    def load(self, path: Path, options: LoadOptions) -> ModelAdapter:
        import skops.io

        refused = [t for t in untrusted_types(path) if t not in options.trusted_types]
        if refused:
            raise ArtifactError(
                f"{path.name} contains types skops does not trust: {', '.join(refused)}. "
                "If you trust them, register again naming each with --trust-type."
            )
        try:
            estimator = skops.io.load(path, trusted=list(options.trusted_types) or None)
        except Exception as exc:  # skops raises many types for damaged files
            raise ArtifactError(f"{path.name} could not be loaded by skops: {exc}") from exc
        return EstimatorAdapter(estimator, self.name, options.classes)
