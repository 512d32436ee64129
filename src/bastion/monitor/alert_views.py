"""Reading alert state and history: what `bastion monitor alerts` and the API show.

`alert_states` lists each rule's current state (``alert_states``), `alert_history` the
latest state changes with their delivery (``alert_events``); both block on the database.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from bastion.errors import InvalidInput
from bastion.store import Database
from bastion.store.tables import AlertEventRow, AlertStateRow


@dataclass(frozen=True)
class AlertStatus:
    """An alert's current state, for `bastion monitor alerts` and the API."""

    deployment: str
    name: str
    state: str
    consecutive: int
    since: datetime
    updated_at: datetime
    details: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "name": self.name,
            "state": self.state,
            "consecutive": self.consecutive,
            "since": self.since.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "details": self.details,
        }


@dataclass(frozen=True)
class AlertEvent:
    """One stored state change and its delivery (``notified_at`` None: not delivered)."""

    id: int
    deployment: str
    name: str
    at: datetime
    from_state: str
    to_state: str
    details: dict[str, Any]
    notified_at: datetime | None
    attempts: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "deployment": self.deployment,
            "name": self.name,
            "at": self.at.isoformat(),
            "from_state": self.from_state,
            "to_state": self.to_state,
            "details": self.details,
            "notified_at": None if self.notified_at is None else self.notified_at.isoformat(),
            "attempts": self.attempts,
        }


def alert_states(database: Database, deployment: str) -> list[AlertStatus]:
    """The current state of every alert of `deployment` that has been evaluated, by name."""
    query = (
        select(AlertStateRow)
        .where(AlertStateRow.deployment == deployment)
        .order_by(AlertStateRow.name)
    )
    with database.transaction() as session:
        return [
            AlertStatus(
                r.deployment,
                r.name,
                r.state,
                r.consecutive,
                r.since,
                r.updated_at,
                dict(r.details or {}),
            )
            for r in session.scalars(query)
        ]


def alert_history(database: Database, deployment: str, limit: int = 100) -> list[AlertEvent]:
    """The latest `limit` state changes of `deployment`'s alerts, newest first."""
    if not 1 <= limit <= 10_000:
        raise InvalidInput(f"limit must be between 1 and 10000, got {limit}")
    query = (
        select(AlertEventRow)
        .where(AlertEventRow.deployment == deployment)
        .order_by(AlertEventRow.at.desc(), AlertEventRow.id.desc())
        .limit(limit)
    )
    with database.transaction() as session:
        return [
            AlertEvent(
                r.id,
                r.deployment,
                r.name,
                r.at,
                r.from_state,
                r.to_state,
                dict(r.details or {}),
                r.notified_at,
                r.attempts,
            )
            for r in session.scalars(query)
        ]
