"""`bastion feedback import|list` on SQLite and PostgreSQL: labels from files, matched by
decision id or by subject and time, with a summary of what did not match."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import lightgbm
import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner, Result

from bastion.cli import app
from bastion.guard.pseudonym import Pseudonymizer
from bastion.monitor import perf_import
from bastion.registry import ArtifactStore, Registry
from bastion.review.feedback import add_feedback_rows, list_feedback
from bastion.serving.ids import uuid7
from bastion.store import Database
from bastion.store.tables import DecisionRow, FeedbackRow

SECRET = "a-test-secret-of-sufficient-length"
NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def model_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"income": rng.normal(50, 10, 200), "debt": rng.normal(20, 5, 200)})
    labels = (frame["income"] - frame["debt"] > 30).astype(int)
    booster = lightgbm.train(
        {"objective": "binary", "num_leaves": 4, "verbose": -1},
        lightgbm.Dataset(frame, label=labels),
        num_boost_round=3,
    )
    path = tmp_path_factory.mktemp("model") / "credit.txt"
    booster.save_model(str(path))
    return path


@pytest.fixture
def runner(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    database_url: str,
    database: Database,
    model_file: Path,
) -> CliRunner:
    home = tmp_path / ".bastion"
    monkeypatch.setenv("BASTION_HOME", str(home))
    monkeypatch.setenv("BASTION_DATABASE_URL", database_url)
    monkeypatch.setenv("BASTION_SECRET_KEY", SECRET)
    monkeypatch.chdir(tmp_path)
    sample = pd.DataFrame({"income": [40.0, 60.0], "debt": [10.0, 30.0]})
    Registry(database, ArtifactStore(home / "artifacts")).register(
        "credit", model_file, sample=sample
    )
    return CliRunner()


def _decision(
    database: Database,
    *,
    subject: str | None = None,
    at: datetime = NOW - timedelta(days=30),
    deployment: str = "credit",
) -> str:
    decision_id = uuid7()
    key = None if subject is None else Pseudonymizer(SECRET.encode()).pseudonymize(subject)
    with database.transaction() as session:
        session.add(
            DecisionRow(
                id=decision_id,
                created_at=at,
                deployment=deployment,
                model_name="credit",
                model_version=1,
                subject_key=key,
                inputs={"income": 50.0},
                outputs={"score": 0.3},
                outcome="approve",
                latency_ms=1.0,
                guard=None,
                policy=None,
                explanation=None,
            )
        )
    return decision_id


def feedback(runner: CliRunner, *args: str, code: int = 0) -> Result:
    result = runner.invoke(app, ["feedback", *args], catch_exceptions=False)
    assert result.exit_code == code, result.output
    return result


def _stored(database: Database) -> list[tuple[str, Any, str]]:
    with database.transaction() as session:
        return [(f.decision_id, f.label, f.source) for f in list_feedback(session, "credit")]


def test_import_by_decision_id_stores_labels_and_reports_the_rest(
    runner: CliRunner, database: Database, tmp_path: Path
) -> None:
    first, second = _decision(database), _decision(database)
    other = _decision(database, deployment="fraud")
    pd.DataFrame(
        {
            "decision_id": [first, second, "01234567-89ab-7def-8123-456789abcdef", "x", other],
            "label": ["1", "0", "1", "1", "1"],
        }
    ).to_csv(tmp_path / "labels.csv", index=False)

    out = feedback(runner, "import", "labels.csv", "--deployment", "credit")

    assert "5 row(s): 2 matched (stored), 2 unmatched, 1 invalid" in out.stdout
    assert "row 3: unmatched: no decision with this id" in out.stdout
    assert "row 4: invalid: decision_id is not a decision id" in out.stdout
    assert "row 5: unmatched: the decision belongs to deployment fraud" in out.stdout
    assert sorted(_stored(database)) == sorted([(first, 1, "import"), (second, 0, "import")])


def test_import_by_subject_and_time_takes_the_latest_decision_before(
    runner: CliRunner, database: Database, tmp_path: Path
) -> None:
    early = _decision(database, subject="cust-7", at=NOW - timedelta(days=60))
    late = _decision(database, subject="cust-7", at=NOW - timedelta(days=10))
    lone = _decision(database, subject="cust-8", at=NOW - timedelta(days=5))
    pd.DataFrame(
        {
            "subject_id": ["cust-7", "cust-7", "cust-8", "cust-9", "cust-7"],
            "at": [
                (NOW - timedelta(days=20)).isoformat(),  # → early
                (NOW - timedelta(days=1)).isoformat(),  # → late
                (NOW - timedelta(days=6)).isoformat(),  # before cust-8's only decision
                NOW.isoformat(),  # no such subject
                "soon",
            ],
            "label": [1, 0, 1, 1, 1],
        }
    ).to_parquet(tmp_path / "labels.parquet")

    summary = json.loads(feedback(runner, "import", "labels.parquet", "--json").stdout)

    assert (summary["matched"], summary["unmatched"], summary["invalid"]) == (2, 2, 1)
    assert summary["reasons"] == {
        "unmatched: the subject has no decision at or before at": 2,
        "invalid: at must be an ISO 8601 time such as 2026-11-26T12:00:00Z, got 'soon'": 1,
    }
    assert sorted(_stored(database)) == sorted([(early, 1, "import"), (late, 0, "import")])
    assert lone not in {d for d, _, _ in _stored(database)}
    assert "cust-" not in json.dumps(summary)  # subject ids are never echoed


def test_dry_run_checks_everything_and_stores_nothing(
    runner: CliRunner, database: Database, tmp_path: Path
) -> None:
    decision_id = _decision(database)
    pd.DataFrame({"decision_id": [decision_id, decision_id], "label": ["1", "yes"]}).to_csv(
        tmp_path / "labels.csv", index=False
    )

    out = feedback(runner, "import", "labels.csv", "--dry-run")

    assert "2 row(s): 1 matched (would store), 0 unmatched, 1 invalid" in out.stdout
    assert "dry run, nothing stored" in out.stdout
    assert "label 'yes' is not one of the model's classes: 0, 1" in out.stdout
    assert _stored(database) == []


def test_labels_keep_history_and_list_shows_the_latest_first(
    runner: CliRunner, database: Database, tmp_path: Path
) -> None:
    decision_id = _decision(database, at=NOW - timedelta(days=400))
    pd.DataFrame(
        {
            "decision_id": [decision_id, decision_id],
            "label": ["1", "0"],
            "observed_at": [
                (NOW - timedelta(days=1)).isoformat(),
                (NOW - timedelta(days=200)).isoformat(),
            ],
        }
    ).to_csv(tmp_path / "labels.csv", index=False)
    feedback(runner, "import", "labels.csv")

    listed = json.loads(feedback(runner, "list", "credit", "--json").stdout)
    lines = feedback(runner, "list", "credit", "--decision", decision_id).stdout.splitlines()

    assert [f["label"] for f in listed] == [1, 0]
    assert len(lines) == 2
    assert decision_id in lines[0]
    assert "label=1  import by" in lines[0]
    assert "no feedback labels for deployment fraud" in feedback(runner, "list", "fraud").stdout


def test_bad_files_are_clear_errors(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "wrong.csv").write_text("id,outcome\n1,0\n")
    missing = runner.invoke(app, ["feedback", "import", "nothing.csv"])
    wrong = runner.invoke(app, ["feedback", "import", "wrong.csv"])
    assert missing.exit_code != 0
    assert "no feedback file at nothing.csv" in str(missing.exception)
    assert "needs a label column and either decision_id or subject_id and at" in str(
        wrong.exception
    )


def test_import_is_one_transaction(
    runner: CliRunner, database: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failure in a later chunk leaves nothing from the earlier ones."""
    first = _decision(database)
    rows = pd.DataFrame({"decision_id": [first] * 3, "label": ["1"] * 3})
    rows.to_csv(tmp_path / "labels.csv", index=False)
    calls = {"n": 0}

    def failing(session: Any, batch: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("disk full")
        return add_feedback_rows(session, batch)

    monkeypatch.setattr(perf_import, "add_feedback_rows", failing)
    monkeypatch.setattr(perf_import, "CHUNK_ROWS", 2)
    with pytest.raises(RuntimeError, match="disk full"):
        runner.invoke(app, ["feedback", "import", "labels.csv"], catch_exceptions=False)
    with database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(FeedbackRow)) == 0


def test_every_command_has_help(runner: CliRunner) -> None:
    for command in ("import", "list"):
        assert "Usage" in feedback(runner, command, "--help").stdout


def test_subjects_are_found_under_a_rotated_key(
    runner: CliRunner, database: Database, tmp_path: Path
) -> None:
    """A decision pseudonymized before a key rotation still takes its subject's label."""
    old_key = "an-older-key-from-before-rotation"
    (tmp_path / ".bastion").mkdir(exist_ok=True)
    (tmp_path / ".bastion" / "secret.key").write_text(old_key + "\n")
    decision_id = uuid7()
    with database.transaction() as session:
        session.add(
            DecisionRow(
                id=decision_id,
                created_at=NOW - timedelta(days=3),
                deployment="credit",
                model_name="credit",
                model_version=1,
                subject_key=Pseudonymizer(old_key.encode()).pseudonymize("cust-1"),
                inputs={},
                outputs={"score": 0.3},
                outcome="approve",
                latency_ms=1.0,
                guard=None,
                policy=None,
                explanation=None,
            )
        )
    pd.DataFrame({"subject_id": ["cust-1"], "at": [NOW.isoformat()], "label": [1]}).to_csv(
        tmp_path / "labels.csv", index=False
    )
    assert "1 matched (stored)" in feedback(runner, "import", "labels.csv").stdout
    assert _stored(database) == [(decision_id, 1, "import")]
