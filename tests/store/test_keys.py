"""API keys: tokens, the repository and the key service, on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import itertools
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from bastion.errors import InvalidInput, NotFound
from bastion.store import Database
from bastion.store.keys import (
    KEYS_TOPIC,
    KeyService,
    active_keys,
    add_key,
    hash_token,
    token_key_id,
    verify_token,
)
from bastion.store.notify import ChangeFeed, ChangeFeedError
from bastion.store.tables import ApiKeyRow, AuditEventRow


class RecordingFeed(ChangeFeed):
    """A feed that keeps what is published, or fails every publish when told to."""

    backend = "recording"

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.sent: list[tuple[str, dict[str, Any]]] = []
        self.fail = fail

    def publish(self, topic: str, payload: dict[str, Any]) -> None:
        if self.fail:
            raise ChangeFeedError("the feed is down")
        self.sent.append((topic, payload))

    def _send(self, message: str) -> None:
        raise NotImplementedError

    async def _listen(self, ready: Callable[[], None]) -> None:
        raise NotImplementedError


@pytest.fixture
def feed() -> RecordingFeed:
    return RecordingFeed()


def ticking_clock() -> Callable[[], datetime]:
    """A clock one second further on at every call, so creation order is unambiguous."""
    ticks = itertools.count()
    start = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
    return lambda: start + timedelta(seconds=next(ticks))


@pytest.fixture
def keys(database: Database, feed: RecordingFeed) -> KeyService:
    return KeyService(database, feed, ticking_clock())


def _rows(database: Database) -> list[ApiKeyRow]:
    with database.transaction() as session:
        return list(session.scalars(select(ApiKeyRow)))


def test_create_stores_only_the_sha256_of_the_token(keys: KeyService, database: Database) -> None:
    created = keys.create("predict", deployment="credit", description="scoring", actor="ana")

    (row,) = _rows(database)
    assert row.secret_hash == hashlib.sha256(created.token.encode()).hexdigest()
    stored = " ".join(str(getattr(row, c.key)) for c in ApiKeyRow.__table__.columns)
    secret = created.token.split("_", 2)[2]  # bst_<hex id>_<secret>; secrets may contain "_"
    assert secret not in stored
    assert (row.id, row.role, row.deployment, row.created_by) == (
        created.key.id,
        "predict",
        "credit",
        "ana",
    )


def test_token_names_its_key_and_carries_32_random_bytes(keys: KeyService) -> None:
    created = keys.create("admin", actor="ana")

    prefix, key_id, secret = created.token.split("_", 2)
    assert prefix == "bst"
    assert key_id == created.key.id
    assert token_key_id(created.token) == created.key.id
    assert len(base64.urlsafe_b64decode(secret + "=")) == 32


def test_tokens_are_unique(keys: KeyService) -> None:
    tokens = {keys.create("predict", actor="ana").token for _ in range(20)}

    assert len(tokens) == 20


def test_created_key_repr_hides_the_token(keys: KeyService) -> None:
    created = keys.create("admin", actor="ana")

    assert created.token not in repr(created)


def test_verify_token_accepts_only_the_exact_token(keys: KeyService) -> None:
    created = keys.create("predict", actor="ana")
    (key,) = keys.active()
    tampered = created.token[:-1] + ("A" if created.token[-1] != "A" else "B")

    assert verify_token(created.token, key.secret_hash)
    assert not verify_token(tampered, key.secret_hash)
    assert created.token not in repr(key)


@given(st.text(max_size=120))
def test_token_key_id_never_raises_on_any_text(text: str) -> None:
    key_id = token_key_id(text)

    assert key_id is None or (len(key_id) == 16 and text.startswith(f"bst_{key_id}_"))
    assert not verify_token(text, hash_token(text + "x"))


def test_list_shows_metadata_and_revocation(keys: KeyService) -> None:
    first = keys.create("predict", actor="ana")
    second = keys.create("operate", description="on-call", actor="ana")
    keys.revoke(first.key.id, actor="bo")

    listed = keys.list()
    active = keys.list(include_revoked=False)

    assert [k.id for k in listed] == [first.key.id, second.key.id]
    assert [k.active for k in listed] == [False, True]
    assert [k.id for k in active] == [second.key.id]
    assert not hasattr(listed[0], "secret_hash")


def test_revoke_removes_a_key_from_the_active_set(keys: KeyService) -> None:
    kept = keys.create("predict", actor="ana")
    gone = keys.create("predict", actor="ana")

    key, revoked = keys.revoke(gone.key.id, actor="bo")

    assert revoked
    assert key.revoked_at is not None
    assert [k.id for k in keys.active()] == [kept.key.id]


def test_revoking_twice_changes_nothing(keys: KeyService, feed: RecordingFeed) -> None:
    created = keys.create("predict", actor="ana")
    first, _ = keys.revoke(created.key.id, actor="bo")

    again, revoked = keys.revoke(created.key.id, actor="bo")

    assert not revoked
    assert again.revoked_at == first.revoked_at
    assert [payload["action"] for _, payload in feed.sent] == ["created", "revoked"]


def test_revoke_unknown_key_is_not_found(keys: KeyService) -> None:
    with pytest.raises(NotFound, match="no API key with id 'nope'"):
        keys.revoke("nope", actor="bo")


@pytest.mark.parametrize(
    ("role", "deployment", "message"),
    [
        ("root", None, "role must be one of predict, review, operate, admin, got 'root'"),
        ("admin", "credit", "admin keys are not deployment-scoped"),
        ("review", "credit", "review keys are not deployment-scoped"),
        ("predict", "", "non-empty"),
    ],
)
def test_create_refuses_bad_role_or_binding(
    keys: KeyService, database: Database, role: str, deployment: str | None, message: str
) -> None:
    with pytest.raises(InvalidInput, match=message):
        keys.create(role, deployment=deployment, actor="ana")

    assert _rows(database) == []


def test_changes_are_announced_after_commit(keys: KeyService, feed: RecordingFeed) -> None:
    created = keys.create("predict", actor="ana")
    keys.revoke(created.key.id, actor="bo")

    assert feed.sent == [
        (KEYS_TOPIC, {"action": "created", "key_id": created.key.id}),
        (KEYS_TOPIC, {"action": "revoked", "key_id": created.key.id}),
    ]


def test_failed_notification_keeps_the_committed_revocation(
    database: Database, caplog: pytest.LogCaptureFixture
) -> None:
    keys = KeyService(database, RecordingFeed(fail=True))
    created = keys.create("predict", actor="ana")

    with caplog.at_level(logging.WARNING, logger="bastion.store.keys"):
        keys.revoke(created.key.id, actor="bo")

    assert keys.active() == []
    assert "periodic re-read" in caplog.text


def test_changes_are_audited_without_secrets(keys: KeyService, database: Database) -> None:
    created = keys.create("predict", deployment="credit", actor="ana")
    keys.revoke(created.key.id, actor="bo")

    with database.transaction() as session:
        events = list(session.scalars(select(AuditEventRow).order_by(AuditEventRow.id)))
    assert [(e.action, e.actor, e.target) for e in events] == [
        ("key.created", "ana", f"key:{created.key.id}"),
        ("key.revoked", "bo", f"key:{created.key.id}"),
    ]
    everything = " ".join(f"{e.details} {e.before_digest} {e.after_digest}" for e in events)
    assert created.token not in everything
    assert hash_token(created.token) not in everything


def test_repository_leaves_the_commit_to_the_caller(database: Database) -> None:
    session = database.sessions()
    try:
        add_key(
            session,
            role="admin",
            deployment=None,
            description=None,
            created_by="ana",
            now=datetime.now(UTC),
        )
        assert len(active_keys(session)) == 1
        session.rollback()
    finally:
        session.close()

    assert _rows(database) == []
