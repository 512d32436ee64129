"""Keyed pseudonyms for subject ids: stable, not reversible without the key, erasable exactly.

A subject id (customer number, e-mail, ...) is never stored. Bastion stores
``<key id>:<HMAC-SHA256(key, subject id)>`` instead, so every record of one subject can be
found (and erased) while the raw id stays out of every store and log.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path


class Pseudonymizer:
    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError(f"the pseudonymization key must be at least 16 bytes, got {len(key)}")
        self._key = key
        # A short id of the key, so pseudonyms made with a rotated key are recognisable.
        self.key_id = hashlib.sha256(b"bastion-key-id:" + key).hexdigest()[:8]

    def __repr__(self) -> str:
        return f"Pseudonymizer(key_id={self.key_id!r}, key=***)"

    def pseudonymize(self, subject_id: str) -> str:
        mac = hmac.new(self._key, subject_id.encode("utf-8"), hashlib.sha256).hexdigest()
        return f"{self.key_id}:{mac}"

    @classmethod
    def from_secret(cls, secret: str | None, key_file: Path) -> Pseudonymizer:
        """Use `secret` (BASTION_SECRET_KEY) or the key file, creating one on first use."""
        if secret:
            return cls(secret.encode("utf-8"))
        if not key_file.exists():
            key_file.parent.mkdir(parents=True, exist_ok=True)
            key_file.write_text(secrets.token_hex(32))
            key_file.chmod(0o600)
        return cls(key_file.read_text().strip().encode("utf-8"))
