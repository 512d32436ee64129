"""`bastion audit verify` and `bastion audit list`, run in-process as a user would type them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner, Result

from bastion.cli import app
from bastion.store import Database
from bastion.store.audit import AuditLog

T0 = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / ".bastion"))
    monkeypatch.setenv("BASTION_DATABASE_URL", database_url)
    return CliRunner()


@pytest.fixture
def seeded(database_url: str) -> Iterator[Database]:
    """Three events: alice registers credit:1 and credit:2, bob promotes credit:2."""
    database = Database(database_url)
    database.migrate()
    events = [
        ("alice", "model.registered", "credit:1"),
        ("alice", "model.registered", "credit:2"),
        ("bob", "model.stage_changed", "credit:2"),
    ]
    try:
        with database.transaction() as session:
            for minutes, (actor, action, target) in enumerate(events):
                AuditLog.append(
                    session,
                    actor=actor,
                    action=action,
                    target=target,
                    details={"n": minutes},
                    at=T0 + timedelta(minutes=minutes),
                )
        yield database
    finally:
        database.dispose()


def invoke(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(app, ["audit", *args], catch_exceptions=False)


def run(runner: CliRunner, *args: str) -> str:
    result = invoke(runner, *args)
    assert result.exit_code == 0, result.output
    return result.output


def test_audit_verify_reports_an_empty_log_intact(runner: CliRunner) -> None:
    assert "audit chain intact: 0 events" in run(runner, "verify")


def test_audit_verify_reports_an_intact_chain(runner: CliRunner, seeded: Database) -> None:
    assert "audit chain intact: 3 events" in run(runner, "verify")


def test_audit_verify_names_the_first_edited_event_and_exits_2(
    runner: CliRunner, seeded: Database
) -> None:
    with seeded.transaction() as session:
        session.execute(text("UPDATE audit_events SET target = 'credit:9' WHERE id = 2"))

    result = invoke(runner, "verify")

    assert result.exit_code == 2
    assert "audit chain broken at event 2 (edited)" in result.output
    assert "1 event(s) before it are intact" in result.output


def test_audit_verify_names_a_deleted_event(runner: CliRunner, seeded: Database) -> None:
    with seeded.transaction() as session:
        session.execute(text("DELETE FROM audit_events WHERE id = 2"))

    result = invoke(runner, "verify")

    assert result.exit_code == 2
    assert "audit chain broken at event 3 (deleted)" in result.output
    assert "event 2 is missing" in result.output


def _listed(runner: CliRunner, *args: str) -> list[dict[str, object]]:
    events: list[dict[str, object]] = json.loads(run(runner, "list", "--json", *args))
    return events


def test_audit_list_json_is_newest_first(runner: CliRunner, seeded: Database) -> None:
    events = _listed(runner)

    assert [e["id"] for e in events] == [3, 2, 1]
    assert events[0]["action"] == "model.stage_changed"
    assert events[0]["at"] == "2026-11-26T12:02:00+00:00"
    assert events[0]["details"] == {"n": 2}
    assert events[0]["prev_hash"] == events[1]["hash"]


@pytest.mark.parametrize(
    ("args", "ids"),
    [
        (["--action", "model.registered"], [2, 1]),
        (["--actor", "bob"], [3]),
        (["--target", "credit:2"], [3, 2]),
        (["--since", "2026-11-26T12:01:00Z"], [3, 2]),
        (["--since", "2026-11-26T12:01:00", "--until", "2026-11-26T12:02:00"], [2]),
        (["--limit", "1"], [3]),
    ],
)
def test_audit_list_filters(
    runner: CliRunner, seeded: Database, args: list[str], ids: list[int]
) -> None:
    assert [e["id"] for e in _listed(runner, *args)] == ids


def test_audit_list_prints_a_table(runner: CliRunner, seeded: Database) -> None:
    output = run(runner, "list", "--actor", "bob")

    assert "model.stage_changed" in output
    assert "credit:2" in output
    assert "model.registered" not in output


def test_audit_list_refuses_a_malformed_time(runner: CliRunner) -> None:
    result = invoke(runner, "list", "--since", "yesterday")

    assert result.exit_code == 2
    assert "expected an ISO-8601 time" in result.output


@pytest.mark.parametrize("command", [[], ["verify"], ["list"]])
def test_audit_commands_have_help(runner: CliRunner, command: list[str]) -> None:
    output = run(runner, *command, "--help")

    assert "Usage" in output
