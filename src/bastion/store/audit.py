"""The audit log: an append-only, hash-chained record of every control-plane change.

Every change to what Bastion serves or who may call it (a model registered, a stage moved,
a spec applied, a key created or revoked, a subject erased, thresholds applied) is recorded
with `AuditLog.append`, inside the transaction that makes the change, so the change and its
record commit or roll back together.

Each row's hash covers the previous row's hash and its own contents, so editing, inserting
or deleting a row anywhere but at the very end breaks the chain; `AuditLog.verify` walks it
and names the first row at fault. See docs/audit.md.
"""

from __future__ import annotations

import builtins
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

import orjson
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from bastion.errors import InvalidInput
from bastion.store.tables import AuditEventRow

#: the `prev_hash` of the first event
GENESIS_HASH = "0" * 64

#: PostgreSQL advisory lock key that serializes appends: the ASCII bytes of "bastion".
AUDIT_LOCK_KEY = 0x62617374696F6E

_CANONICAL = orjson.OPT_SORT_KEYS | orjson.OPT_SERIALIZE_NUMPY
_LIMITS = {"actor": 128, "action": 64, "target": 256}

BreakKind = Literal["edited", "inserted", "deleted"]


def canonical_json(value: Any) -> bytes:
    """The one JSON encoding that is hashed: orjson with keys sorted at every level."""
    return orjson.dumps(value, option=_CANONICAL)


def state_digest(state: Any) -> str | None:
    """The sha256 of a state's canonical JSON, or None when there is no state."""
    if state is None:
        return None
    return hashlib.sha256(canonical_json(state)).hexdigest()


def event_hash(
    prev_hash: str,
    *,
    id: int,
    at: datetime,
    actor: str,
    action: str,
    target: str,
    before_digest: str | None,
    after_digest: str | None,
    details: dict[str, Any],
) -> str:
    """``sha256(prev_hash || canonical JSON of the event's fields)``, as lowercase hex.

    `prev_hash` enters as its 64 ASCII hex characters; `at` as ISO-8601 in UTC with
    microseconds, so the value reads back identically from SQLite and PostgreSQL.
    """
    body = canonical_json(
        {
            "id": id,
            "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
            "actor": actor,
            "action": action,
            "target": target,
            "before_digest": before_digest,
            "after_digest": after_digest,
            "details": details,
        }
    )
    return hashlib.sha256(prev_hash.encode("ascii") + body).hexdigest()


def _row_hash(row: AuditEventRow) -> str:
    return event_hash(
        row.prev_hash,
        id=row.id,
        at=row.at,
        actor=row.actor,
        action=row.action,
        target=row.target,
        before_digest=row.before_digest,
        after_digest=row.after_digest,
        details=row.details,
    )


@dataclass(frozen=True)
class AuditEvent:
    """One recorded control-plane change, as read from the log."""

    id: int
    at: datetime
    actor: str
    action: str
    target: str
    before_digest: str | None
    after_digest: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str

    @classmethod
    def from_row(cls, row: AuditEventRow) -> AuditEvent:
        return cls(
            id=row.id,
            at=row.at,
            actor=row.actor,
            action=row.action,
            target=row.target,
            before_digest=row.before_digest,
            after_digest=row.after_digest,
            details=dict(row.details),
            prev_hash=row.prev_hash,
            hash=row.hash,
        )

    def as_dict(self) -> dict[str, Any]:
        """The JSON shape of `bastion audit list --json`."""
        return {
            "id": self.id,
            "at": self.at.astimezone(UTC).isoformat(),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "before_digest": self.before_digest,
            "after_digest": self.after_digest,
            "details": self.details,
            "prev_hash": self.prev_hash,
            "hash": self.hash,
        }


@dataclass(frozen=True)
class ChainBreak:
    """The first row at fault: its id, what happened to it and why that is known."""

    id: int
    kind: BreakKind
    reason: str


@dataclass(frozen=True)
class VerifyReport:
    """The outcome of `AuditLog.verify`.

    `events` counts the rows found intact before the first break (all rows when intact);
    `head_hash` is the hash of the last intact row, or `GENESIS_HASH` for an empty log.
    Keep `head_hash` somewhere else to detect later deletion of the newest rows, which no
    hash chain can detect on its own.
    """

    events: int
    head_hash: str
    broken: ChainBreak | None = None

    @property
    def intact(self) -> bool:
        return self.broken is None


def _require_aware(name: str, value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise InvalidInput(f"{name} must be a timezone-aware datetime, got {value.isoformat()}")


class AuditLog:
    """Appends to, reads and verifies the audit log, always inside the caller's session.

    Like every repository it never commits: the event becomes durable with the caller's
    transaction, or vanishes with its rollback together with the change it records.
    """

    @classmethod
    def append(
        cls,
        session: Session,
        *,
        actor: str,
        action: str,
        target: str,
        before: Any = None,
        after: Any = None,
        details: dict[str, Any] | None = None,
        at: datetime,
    ) -> AuditEvent:
        """Record one change and link it to the newest event.

        `before` and `after` are JSON-able states; only their sha256 digests are stored.
        `details` is stored as JSON and shown by `bastion audit list`: it must never hold
        raw personal data, only ids, pseudonyms, names and digests.

        Appends are serialized (an advisory lock on PostgreSQL, the write lock on SQLite),
        held until the caller's transaction ends: append as the last step of a transaction.
        """
        for name, value in (("actor", actor), ("action", action), ("target", target)):
            if not 1 <= len(value) <= _LIMITS[name]:
                raise InvalidInput(
                    f"{name} must be 1 to {_LIMITS[name]} characters, got {len(value)}"
                )
        _require_aware("at", at)
        try:
            before_digest = state_digest(before)
            after_digest = state_digest(after)
            # Store exactly what was hashed: the JSON round trip turns tuples into lists,
            # datetimes into strings and NaN into null, as reading the column back would.
            stored_details = orjson.loads(canonical_json(dict(details or {})))
        except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
            raise InvalidInput(f"audit before/after/details must be JSON-able: {exc}") from exc

        cls._lock(session)
        last = session.execute(
            select(AuditEventRow.id, AuditEventRow.hash).order_by(AuditEventRow.id.desc()).limit(1)
        ).first()
        event_id, prev_hash = (last.id + 1, last.hash) if last is not None else (1, GENESIS_HASH)
        row = AuditEventRow(
            id=event_id,
            at=at.astimezone(UTC),
            actor=actor,
            action=action,
            target=target,
            before_digest=before_digest,
            after_digest=after_digest,
            details=stored_details,
            prev_hash=prev_hash,
        )
        row.hash = _row_hash(row)
        session.add(row)
        session.flush()
        return AuditEvent.from_row(row)

    @staticmethod
    def _lock(session: Session) -> None:
        """Hold the append lock until the transaction ends, before the newest row is read."""
        if session.get_bind().dialect.name == "postgresql":
            session.execute(select(func.pg_advisory_xact_lock(AUDIT_LOCK_KEY)))
        else:
            # SQLite allows one writer: a write statement, even one that changes nothing,
            # opens the write transaction (RESERVED lock, waiting out busy_timeout) if this
            # transaction does not hold it yet. Reads that follow see the latest commit.
            session.execute(text("UPDATE audit_events SET id = id WHERE 0 = 1"))

    @classmethod
    def verify(cls, session: Session, *, batch_size: int = 1000) -> VerifyReport:
        """Walk the chain in id order and report the first edited, inserted or deleted row.

        Rows are read `batch_size` at a time, so memory stays bounded on long logs.
        """
        count = 0
        prev_id, prev_hash = 0, GENESIS_HASH
        before_prev_hash: str | None = None
        while True:
            rows = session.scalars(
                select(AuditEventRow)
                .where(AuditEventRow.id > prev_id)
                .order_by(AuditEventRow.id)
                .limit(batch_size)
            ).all()
            if not rows:
                return VerifyReport(events=count, head_hash=prev_hash)
            for row in rows:
                broken = cls._check(row, prev_id, prev_hash, before_prev_hash)
                if broken is not None:
                    return VerifyReport(events=count, head_hash=prev_hash, broken=broken)
                count += 1
                before_prev_hash = prev_hash
                prev_id, prev_hash = row.id, row.hash

    @staticmethod
    def _check(
        row: AuditEventRow, prev_id: int, prev_hash: str, before_prev_hash: str | None
    ) -> ChainBreak | None:
        if row.id != prev_id + 1:
            missing = (
                f"event {prev_id + 1} is"
                if row.id == prev_id + 2
                else f"events {prev_id + 1} to {row.id - 1} are"
            )
            return ChainBreak(row.id, "deleted", f"{missing} missing before event {row.id}")
        if row.prev_hash != prev_hash:
            if prev_id > 0 and row.prev_hash == before_prev_hash:
                return ChainBreak(
                    prev_id,
                    "inserted",
                    f"event {prev_id} was inserted: event {row.id} links to event {prev_id - 1}",
                )
            return ChainBreak(
                row.id,
                "inserted",
                f"event {row.id} does not link to event {prev_id}: it was inserted, or "
                f"event {prev_id} was rewritten",
            )
        if _row_hash(row) != row.hash:
            return ChainBreak(
                row.id, "edited", f"event {row.id} was edited: its contents do not match its hash"
            )
        return None

    @classmethod
    def list(
        cls,
        session: Session,
        *,
        action: str | None = None,
        actor: str | None = None,
        target: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = 100,
    ) -> builtins.list[AuditEvent]:
        """Events newest first; filters match exactly, and `since <= at < until`."""
        if limit < 1:
            raise InvalidInput(f"limit must be at least 1, got {limit}")
        _require_aware("since", since)
        _require_aware("until", until)
        query = select(AuditEventRow)
        if action is not None:
            query = query.where(AuditEventRow.action == action)
        if actor is not None:
            query = query.where(AuditEventRow.actor == actor)
        if target is not None:
            query = query.where(AuditEventRow.target == target)
        if since is not None:
            query = query.where(AuditEventRow.at >= since)
        if until is not None:
            query = query.where(AuditEventRow.at < until)
        rows = session.scalars(query.order_by(AuditEventRow.id.desc()).limit(limit))
        return [AuditEvent.from_row(row) for row in rows]
