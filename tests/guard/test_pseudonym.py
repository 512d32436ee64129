"""Subject pseudonyms: format, key sources, rotation and lookup under every known key."""

from __future__ import annotations

import hashlib
import hmac
import stat
from pathlib import Path

import pytest

from bastion.guard.pseudonym import Pseudonymizer, key_id_of, read_key_file, rotate_key_file


def test_pseudonymize_is_key_id_and_full_hmac() -> None:
    key = b"s" * 32
    pseudonymizer = Pseudonymizer(key)
    expected = hmac.new(key, b"customer-17", hashlib.sha256).hexdigest()
    assert pseudonymizer.pseudonymize("customer-17") == f"{key_id_of(key)}:{expected}"
    assert pseudonymizer.key_id == hashlib.sha256(b"bastion-key-id:" + key).hexdigest()[:8]


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes, got 5"):
        Pseudonymizer(b"short")
    with pytest.raises(ValueError, match="previous key"):
        Pseudonymizer(b"k" * 16, previous=[b"old"])


def test_repr_shows_key_ids_not_keys() -> None:
    text = repr(Pseudonymizer(b"secret-key-material!", previous=[b"older-key-material!!"]))
    assert "secret-key-material" not in text
    assert "older-key-material" not in text
    assert key_id_of(b"older-key-material!!") in text


def test_from_secret_uses_the_secret_as_is(tmp_path: Path) -> None:
    pseudonymizer = Pseudonymizer.from_secret("server-tests-pseudonym-key", tmp_path / "k")
    assert pseudonymizer.key_id == key_id_of(b"server-tests-pseudonym-key")
    assert not (tmp_path / "k").exists()


def test_from_secret_creates_a_private_key_file_once(tmp_path: Path) -> None:
    key_file = tmp_path / "home" / "secret.key"
    first = Pseudonymizer.from_secret(None, key_file)
    again = Pseudonymizer.from_secret(None, key_file)
    assert first.pseudonymize("s-1") == again.pseudonymize("s-1")
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_from_secret_reads_a_key_file_written_by_earlier_versions(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_text("a" * 64)  # one key, no newline
    assert Pseudonymizer.from_secret(None, key_file).key_id == key_id_of(b"a" * 64)


def test_rotation_keeps_old_pseudonyms_findable(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    before = Pseudonymizer.from_secret(None, key_file)
    old_pseudonym = before.pseudonymize("customer-17")

    new_id = rotate_key_file(key_file)
    after = Pseudonymizer.from_secret(None, key_file)

    assert after.key_id == new_id != before.key_id
    assert after.key_ids == (new_id, before.key_id)
    assert after.pseudonymize("customer-17") != old_pseudonym
    assert after.pseudonymize_all("customer-17") == [
        after.pseudonymize("customer-17"),
        old_pseudonym,
    ]


def test_secret_keeps_key_file_keys_and_given_previous_ones(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    file_key = Pseudonymizer.from_secret(None, key_file)
    pseudonymizer = Pseudonymizer.from_secret(
        "the-new-environment-key", key_file, previous=["an-older-environment-key"]
    )
    assert pseudonymizer.key_ids == (
        key_id_of(b"the-new-environment-key"),
        key_id_of(b"an-older-environment-key"),
        file_key.key_id,
    )


def test_key_file_ignores_comments_and_blank_lines(tmp_path: Path) -> None:
    key_file = tmp_path / "secret.key"
    key_file.write_text("# current first\n" + "b" * 32 + "\n\n" + "c" * 32 + "\n")
    assert read_key_file(key_file) == ["b" * 32, "c" * 32]


def test_mac_under_an_unknown_key_id_is_refused() -> None:
    with pytest.raises(KeyError, match="key_id must be one of"):
        Pseudonymizer(b"k" * 16).mac("x", key_id="deadbeef")
