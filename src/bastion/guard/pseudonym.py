"""Keyed pseudonyms for subject ids: stable, not reversible without the key, erasable exactly.

A subject id (customer number, e-mail, ...) is never stored. Bastion stores
``<key id>:<HMAC-SHA256(key, subject id)>`` instead, so every record of one subject can be
found (and erased) while the raw id stays out of every store and log.

Keys rotate: a `Pseudonymizer` holds the current key, which makes every new pseudonym, and
any number of previous keys, which are only used to *find* what older records were stored
under (`pseudonymize_all`). Each pseudonym starts with the id of the key that made it.
The key file holds one key per line, the current one first; `rotate_key_file` puts a new key
on top and keeps the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Sequence
from pathlib import Path

MIN_KEY_BYTES = 16


def key_id_of(key: bytes) -> str:
    """The short public id of a key: 8 hex digits of SHA-256, recognisable in pseudonyms."""
    return hashlib.sha256(b"bastion-key-id:" + key).hexdigest()[:8]


class Pseudonymizer:
    """HMAC-SHA256 pseudonyms under a current `key`, knowing `previous` keys (newest first)."""

    def __init__(self, key: bytes, previous: Sequence[bytes] = ()) -> None:
        for name, candidate in [("key", key), *(("previous key", k) for k in previous)]:
            if len(candidate) < MIN_KEY_BYTES:
                raise ValueError(
                    f"the pseudonymization {name} must be at least {MIN_KEY_BYTES} bytes, "
                    f"got {len(candidate)}"
                )
        keys: dict[str, bytes] = {}
        for k in (key, *previous):
            keys.setdefault(key_id_of(k), k)
        self._keys = keys
        self._key = key
        # A short id of the key, so pseudonyms made with a rotated key are recognisable.
        self.key_id = key_id_of(key)

    def __repr__(self) -> str:
        return f"Pseudonymizer(key_id={self.key_id!r}, key_ids={list(self.key_ids)!r}, key=***)"

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Ids of every known key, the current one first."""
        return tuple(self._keys)

    def mac(self, value: str, key_id: str | None = None) -> str:
        """Hex HMAC-SHA256 of `value` under the current key, or under the known `key_id`."""
        key = self._key if key_id is None else self._keys.get(key_id)
        if key is None:
            raise KeyError(f"key_id must be one of {list(self._keys)}, got {key_id!r}")
        return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()

    def pseudonymize(self, subject_id: str) -> str:
        """``<key id>:<hex HMAC>`` under the current key."""
        return f"{self.key_id}:{self.mac(subject_id)}"

    def pseudonymize_all(self, subject_id: str) -> list[str]:
        """The pseudonym of `subject_id` under every known key, the current one first: what
        erasure and export look for, so records made before a rotation are found too."""
        return [f"{key_id}:{self.mac(subject_id, key_id)}" for key_id in self._keys]

    @classmethod
    def from_secret(
        cls, secret: str | None, key_file: Path, previous: Sequence[str] = ()
    ) -> Pseudonymizer:
        """Use `secret` (BASTION_SECRET_KEY) or the key file, creating one on first use.

        With `secret`, the keys in an existing key file stay known as previous keys (after
        `previous`), so moving from the file to the environment loses no history. Without
        it, the file's first key is current and the others are previous keys.
        """
        file_keys = read_key_file(key_file)
        if secret:
            older = [k for k in (*previous, *file_keys) if k != secret]
            return cls(secret.encode("utf-8"), [k.encode("utf-8") for k in older])
        if not file_keys:
            rotate_key_file(key_file)
            file_keys = read_key_file(key_file)
        current, *older = file_keys
        return cls(current.encode("utf-8"), [k.encode("utf-8") for k in (*older, *previous)])


def read_key_file(key_file: Path) -> list[str]:
    """Keys in `key_file`, current first; blank lines and ``#`` comments are skipped."""
    if not key_file.exists():
        return []
    lines = (line.strip() for line in key_file.read_text().splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def rotate_key_file(key_file: Path) -> str:
    """Put a new random key first in `key_file` (created with mode 0600 if missing), keep
    the older keys after it, and return the new key's id."""
    key = secrets.token_hex(32)
    older = read_key_file(key_file)
    key_file.parent.mkdir(parents=True, exist_ok=True)
    tmp = key_file.with_name(key_file.name + ".tmp")
    tmp.write_text("\n".join([key, *older]) + "\n")
    tmp.chmod(0o600)
    tmp.replace(key_file)
    return key_id_of(key.encode("utf-8"))
