"""Content-addressed artifact storage: files live under their sha256 and are re-checked on use."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from bastion.errors import ArtifactError

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class ArtifactStore:
    """A folder of immutable artifacts, `<root>/<sha256>/<original file name>`."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def put(self, source: Path) -> tuple[str, Path]:
        """Copy `source` in (once per content) and return its digest and stored path."""
        digest = sha256_file(source)
        target = self.root / digest / source.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Copy then rename, so a crash never leaves a half-written artifact in place.
            handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            os.close(handle)
            shutil.copyfile(source, temporary)
            os.replace(temporary, target)
            target.chmod(0o444)
        return digest, target

    def verified(self, digest: str, path: Path) -> Path:
        """`path`, after checking its content still hashes to `digest`."""
        if not path.is_file():
            raise ArtifactError(f"artifact {path} is missing; the model cannot be served")
        actual = sha256_file(path)
        if actual != digest:
            raise ArtifactError(
                f"artifact {path.name} has been modified since registration "
                f"(expected sha256 {digest[:12]}…, found {actual[:12]}…); refusing to load it"
            )
        return path
