"""`bastion review …` on the local database (SQLite and PostgreSQL), as a reviewer types it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from bastion.cli import app, main
from bastion.store import Database
from tests.review.cases import SPEC_TEXT, Case, add_case

COMMANDS = ("list", "show", "claim", "resolve", "release", "escalate", "stats")


@pytest.fixture
def runner(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, database: Database
) -> CliRunner:
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / ".bastion"))
    monkeypatch.setenv("BASTION_DATABASE_URL", database_url)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bastion.yaml").write_text(SPEC_TEXT)
    return CliRunner()


def review(runner: CliRunner, *args: str, code: int = 0) -> Result:
    result = runner.invoke(app, ["review", *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def _case(database: Database, priority: float = 0.5) -> Case:
    return add_case(database, created_at=datetime.now(UTC), priority=priority)


def test_claim_then_resolve_records_the_verdict(runner: CliRunner, database: Database) -> None:
    case = _case(database, priority=0.9)
    _case(database, priority=0.1)

    claimed = json.loads(review(runner, "claim", "--reviewer", "ann").stdout)
    resolved = review(
        runner, "resolve", case.task_id, "refer", "--reviewer", "ann", "--notes", "ok"
    )
    shown = json.loads(review(runner, "show", case.task_id).stdout)

    assert (claimed["task_id"], claimed["claimed_by"]) == (case.task_id, "ann")
    assert "feedback label 'refer'" in resolved.stdout
    assert (shown["status"], shown["verdict"], shown["notes"]) == ("resolved", "refer", "ann: ok")
    assert [f["source"] for f in shown["feedback"]] == ["review"]


def test_list_shows_one_whole_line_per_task_and_flags_overdue(
    runner: CliRunner, database: Database
) -> None:
    late = add_case(database, created_at=datetime.now(UTC) - timedelta(hours=3), sla_minutes=60)
    _case(database, priority=0.1)

    lines = review(runner, "list").stdout.splitlines()
    listed = json.loads(review(runner, "list", "--overdue", "--json").stdout)

    assert lines[0].startswith(late.task_id)
    assert "OVERDUE by 2h00m" in lines[0]
    assert "due in 59m" in lines[1]  # an SLA of 60 minutes, a moment ago
    assert [(t["task_id"], t["overdue"]) for t in listed] == [(late.task_id, True)]


def test_release_and_escalate(runner: CliRunner, database: Database) -> None:
    case = _case(database)
    review(runner, "claim", case.task_id, "--reviewer", "ann")

    released = review(runner, "release", case.task_id, "--reviewer", "ann").stdout
    review(runner, "claim", case.task_id, "--reviewer", "bob")
    escalated = review(runner, "escalate", case.task_id, "--reviewer", "bob", "--notes", "odd")
    stats = json.loads(review(runner, "stats", "--json").stdout)

    assert "it is open again" in released
    assert "to level 1" in escalated.stdout
    assert stats["credit"]["by_status"]["escalated"] == 1


def test_claim_on_an_empty_queue_exits_1(runner: CliRunner) -> None:
    result = review(runner, "claim", "--deployment", "credit", code=1)

    assert "no review task is waiting" in result.stderr


def test_errors_are_one_clear_line(
    runner: CliRunner, database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    case = _case(database)
    review(runner, "claim", case.task_id, "--reviewer", "ann")

    with pytest.raises(SystemExit) as wrong_verdict:
        main(["review", "resolve", case.task_id, "maybe", "--reviewer", "ann"])
    with pytest.raises(SystemExit) as held:
        main(["review", "claim", case.task_id, "--reviewer", "bob"])
    with pytest.raises(SystemExit) as no_spec:
        main(["review", "claim", "--spec", "missing.yaml"])

    assert (wrong_verdict.value.code, held.value.code, no_spec.value.code) == (2, 2, 2)
    err = capsys.readouterr().err
    assert "verdict must be one of approve, decline, refer" in err
    assert "claimed by ann until" in err
    assert "no spec at missing.yaml: pass --spec" in err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(runner: CliRunner, command: str) -> None:
    result = review(runner, command, "--help")

    assert "Usage" in result.stdout
    assert len(result.stdout.split("Usage", 1)[1]) > 80
