"""`spec.applied` audit events: written when a served spec changes, not on every restart."""

from __future__ import annotations

from datetime import UTC, datetime

from bastion.serving.applied import record_applied_spec
from bastion.spec import parse_spec
from bastion.store import Database
from bastion.store.audit import AuditLog

AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def _apply(database: Database, spec_text: str) -> bool:
    with database.transaction() as session:
        return record_applied_spec(
            session, parse_spec(spec_text), "spec:/srv/bastion.yaml", actor="ops", at=AT
        )


def test_spec_applied_is_recorded_once_per_change(database: Database) -> None:
    first = "deployments:\n  credit:\n    model: credit:1\n"
    second = "deployments:\n  credit:\n    model: credit:2\n"

    written = [_apply(database, first), _apply(database, first), _apply(database, second)]

    assert written == [True, False, True]
    with database.transaction() as session:
        events = AuditLog.list(session, action="spec.applied")
        assert AuditLog.verify(session).intact
    assert [e.details["deployments"] for e in events] == [["credit"], ["credit"]]
    assert events[0].details["previous_digest"] == events[1].after_digest
