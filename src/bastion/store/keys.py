"""API keys: tokens, the repository over `api_keys`, and the small service the CLI calls.

A token reads ``bst_<key id>_<secret>``: the key id (16 hex characters) is public and
names the row; the secret is 32 random bytes from `secrets`, URL-safe base64. Only the
SHA-256 of the whole token is stored (`secret_hash`), so a database dump holds no usable
key, and a presented token is checked by looking its key id up and comparing hashes in
constant time (`verify_token`).

The repository functions build queries inside the caller's session and never commit;
`KeyService` owns the transactions, writes the audit event with each change, and tells
every replica about it through the change feed after the commit.
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.errors import InvalidInput, NotFound
from bastion.store.audit import AuditLog
from bastion.store.database import Database
from bastion.store.notify import ChangeFeed, ChangeFeedError
from bastion.store.tables import ApiKeyRow

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

#: every role a key can hold; what each may do is decided in `bastion.server.auth`
ROLES = ("predict", "review", "operate", "admin")
#: roles whose keys may be bound to one deployment
SCOPABLE_ROLES = ("predict",)
#: the change-feed topic that announces created and revoked keys
KEYS_TOPIC = "keys"
KEY_PREFIX = "bst"
SECRET_BYTES = 32
_TOKEN = re.compile(rf"^{KEY_PREFIX}_([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})$")


def utcnow() -> datetime:
    return datetime.now(UTC)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def token_key_id(token: str) -> str | None:
    """The key id a well-formed token names, or None for anything else."""
    match = _TOKEN.match(token)
    return match.group(1) if match else None


def verify_token(token: str, secret_hash: str) -> bool:
    """Whether `token` hashes to `secret_hash`, compared in constant time."""
    return hmac.compare_digest(hash_token(token).encode(), secret_hash.encode())


@dataclass(frozen=True)
class ApiKey:
    """What is known about a key, without its secret or hash: safe to list and log."""

    id: str
    role: str
    deployment: str | None
    description: str | None
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    @classmethod
    def from_row(cls, row: ApiKeyRow) -> ApiKey:
        return cls(
            row.id,
            row.role,
            row.deployment,
            row.description,
            row.created_at,
            row.created_by,
            row.revoked_at,
        )


@dataclass(frozen=True)
class ActiveKey:
    """An unrevoked key as the server's cache holds it: enough to authenticate a token."""

    id: str
    role: str
    deployment: str | None
    secret_hash: str = field(repr=False)


@dataclass(frozen=True)
class CreatedKey:
    """A new key and its token. The token exists only here: show it once, then drop it."""

    key: ApiKey
    token: str = field(repr=False)


def validate_key_request(role: str, deployment: str | None) -> None:
    if role not in ROLES:
        raise InvalidInput(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    if deployment is not None and role not in SCOPABLE_ROLES:
        raise InvalidInput(
            f"--deployment binds a predict key to one deployment; {role} keys are not "
            f"deployment-scoped (got role {role} with deployment {deployment!r})"
        )
    if deployment is not None and not deployment:
        raise InvalidInput("deployment must be a non-empty deployment name")


# -- repository: queries in the caller's session, never a commit ------------------------------


def add_key(
    session: Session,
    *,
    role: str,
    deployment: str | None,
    description: str | None,
    created_by: str | None,
    now: datetime,
) -> CreatedKey:
    key_id = secrets.token_hex(8)
    token = f"{KEY_PREFIX}_{key_id}_{secrets.token_urlsafe(SECRET_BYTES)}"
    row = ApiKeyRow(
        id=key_id,
        secret_hash=hash_token(token),
        role=role,
        deployment=deployment,
        description=description,
        created_at=now,
        created_by=created_by,
        revoked_at=None,
    )
    session.add(row)
    session.flush()
    return CreatedKey(ApiKey.from_row(row), token)


def list_keys(session: Session, *, include_revoked: bool = True) -> list[ApiKey]:
    query = select(ApiKeyRow).order_by(ApiKeyRow.created_at, ApiKeyRow.id)
    if not include_revoked:
        query = query.where(ApiKeyRow.revoked_at.is_(None))
    return [ApiKey.from_row(row) for row in session.scalars(query)]


def active_keys(session: Session) -> list[ActiveKey]:
    rows = session.execute(
        select(ApiKeyRow.id, ApiKeyRow.role, ApiKeyRow.deployment, ApiKeyRow.secret_hash).where(
            ApiKeyRow.revoked_at.is_(None)
        )
    )
    return [ActiveKey(r.id, r.role, r.deployment, r.secret_hash) for r in rows]


def revoke_key(session: Session, key_id: str, now: datetime) -> tuple[ApiKey, bool]:
    """Revoke a key; returns it and whether this call revoked it (False: it already was)."""
    row = session.get(ApiKeyRow, key_id, with_for_update=True)
    if row is None:
        raise NotFound(f"no API key with id {key_id!r}; `bastion keys list` shows them")
    if row.revoked_at is not None:
        return ApiKey.from_row(row), False
    row.revoked_at = now
    session.flush()
    return ApiKey.from_row(row), True


# -- service: transactions, audit and notifications ------------------------------------------


class KeyService:
    """Create, list and revoke keys; each change commits with its audit event, then is
    announced on the change feed so every replica's key cache re-reads within a second."""

    def __init__(self, database: Database, feed: ChangeFeed, clock: Clock = utcnow) -> None:
        self.database = database
        self.feed = feed
        self.clock = clock

    def create(
        self,
        role: str,
        *,
        deployment: str | None = None,
        description: str | None = None,
        actor: str,
    ) -> CreatedKey:
        validate_key_request(role, deployment)
        now = self.clock()
        with self.database.transaction() as session:
            created = add_key(
                session,
                role=role,
                deployment=deployment,
                description=description,
                created_by=actor,
                now=now,
            )
            AuditLog.append(
                session,
                actor=actor,
                action="key.created",
                target=f"key:{created.key.id}",
                after={"role": role, "deployment": deployment, "revoked": False},
                details={"role": role, "deployment": deployment},
                at=now,
            )
        self._announce("created", created.key)
        return created

    def list(self, *, include_revoked: bool = True) -> list[ApiKey]:
        with self.database.transaction() as session:
            return list_keys(session, include_revoked=include_revoked)

    def active(self) -> builtins.list[ActiveKey]:
        with self.database.transaction() as session:
            return active_keys(session)

    def revoke(self, key_id: str, *, actor: str) -> tuple[ApiKey, bool]:
        """Revoke `key_id`; returns the key and whether this call revoked it."""
        now = self.clock()
        with self.database.transaction() as session:
            key, revoked = revoke_key(session, key_id, now)
            if revoked:
                AuditLog.append(
                    session,
                    actor=actor,
                    action="key.revoked",
                    target=f"key:{key.id}",
                    before={"role": key.role, "deployment": key.deployment, "revoked": False},
                    after={"role": key.role, "deployment": key.deployment, "revoked": True},
                    at=now,
                )
        if revoked:
            self._announce("revoked", key)
        return key, revoked

    def _announce(self, action: str, key: ApiKey) -> None:
        # The change is committed: a lost notification only delays it until every replica's
        # periodic re-read, so it is logged rather than raised.
        try:
            self.feed.publish(KEYS_TOPIC, {"action": action, "key_id": key.id})
        except ChangeFeedError as exc:
            logger.warning(
                "key %s was %s, but the change notification failed (%s); replicas pick the "
                "change up at their next periodic re-read",
                key.id,
                action,
                exc.message,
            )
