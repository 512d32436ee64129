"""`bastion privacy export|erase` on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bastion.cli import app
from bastion.guard.pseudonym import Pseudonymizer
from bastion.serving.decision_log import DecisionLog, Record
from bastion.store import Database

SECRET = "a-test-secret-of-sufficient-length"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str) -> CliRunner:
    monkeypatch.setenv("BASTION_HOME", str(tmp_path / ".bastion"))
    monkeypatch.setenv("BASTION_DATABASE_URL", database_url)
    monkeypatch.setenv("BASTION_SECRET_KEY", SECRET)
    return CliRunner()


def _record(subject_id: str) -> Record:
    return {
        "id": str(uuid.uuid4()),
        "created_at": datetime.now(UTC),
        "deployment": "credit",
        "model_name": "credit",
        "model_version": 1,
        "subject_key": Pseudonymizer(SECRET.encode()).pseudonymize(subject_id),
        "inputs": {"income": 1.0},
        "outputs": {"score": 0.5},
        "outcome": 1,
        "latency_ms": 1.0,
    }


@pytest.fixture
def decisions(database: Database, tmp_path: Path) -> list[Record]:
    records = [_record("customer-7"), _record("customer-7"), _record("customer-8")]

    async def write() -> None:
        log = DecisionLog(database, tmp_path / ".bastion" / "spool")
        await log.start()
        await log.record(records)
        await log.close()

    asyncio.run(write())
    return records


def test_privacy_export_then_erase(runner: CliRunner, decisions: list[Record]) -> None:
    exported = runner.invoke(app, ["privacy", "export", "customer-7"], catch_exceptions=False)
    erased = runner.invoke(app, ["privacy", "erase", "customer-7"], catch_exceptions=False)
    after = runner.invoke(app, ["privacy", "export", "customer-7"], catch_exceptions=False)
    other = runner.invoke(app, ["privacy", "export", "customer-8"], catch_exceptions=False)

    assert len(json.loads(exported.output)["decisions"]) == 2
    assert "2 decision(s)" in erased.output
    assert "0 review task(s)" in erased.output
    assert "customer-7" not in erased.output
    assert json.loads(after.output)["decisions"] == []
    assert len(json.loads(other.output)["decisions"]) == 1
