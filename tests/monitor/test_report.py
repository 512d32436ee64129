"""The monitoring report: self-contained HTML and JSON, drifted features first, readable when
data is missing, names escaped; and `bastion monitor report` end to end on both databases."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from bastion.cli import app
from bastion.cli.monitor_report import WindowChoice, parse_window
from bastion.demo.data import FEATURES, generate_applications
from bastion.demo.train import TrainedModel, train_model
from bastion.errors import InvalidInput
from bastion.monitor.drift import compare
from bastion.monitor.performance import compute_performance
from bastion.monitor.profile import FeatureKind, Profile, Schema, profile_frame
from bastion.monitor.report import MonitorReport, build_report
from bastion.monitor.report_html import picture_count, render_html
from bastion.monitor.windows import WindowResult, WindowService
from bastion.policy.bands import ScoreBands
from bastion.registry import ArtifactStore, Registry
from bastion.review.feedback import add_feedback
from bastion.store import Database
from bastion.store.tables import DecisionRow

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
BANDS = ScoreBands(approve_below=0.1, decline_at_or_above=0.3)
KINDS: dict[str, FeatureKind] = {
    c: "categorical" if c in ("channel", "country") else "numeric" for c in FEATURES
}
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", re.IGNORECASE)


@pytest.fixture(scope="module")
def trained() -> TrainedModel:
    return train_model(generate_applications(3000, seed=5), seed=5)


def scored(trained: TrainedModel, frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.copy()
    frame["score"] = trained.booster.predict(frame[FEATURES]) if len(frame) else []
    return frame


@pytest.fixture(scope="module")
def reference(trained: TrainedModel) -> Profile:
    frame = scored(trained, generate_applications(3000, seed=5))
    return profile_frame(frame, Schema(KINDS, prediction="score"))


def window(
    trained: TrainedModel,
    reference: Profile,
    frame: pd.DataFrame,
    hour: int = 0,
    *,
    labelled: float = 0.4,
) -> WindowResult:
    """A real window: the frame profiled against the reference, compared, and labelled."""
    frame = scored(trained, frame)
    profile = profile_frame(frame, Schema(KINDS, prediction="score"), reference)
    labels = frame.sample(frac=labelled, random_state=hour) if labelled else frame.head(0)
    performance = compute_performance(labels["score"], labels["default"], bands=BANDS, costs=None)
    performance["label_coverage"] = len(labels) / len(frame) if len(frame) else 0.0
    return WindowResult(
        deployment="credit",
        model_name="credit",
        model_version=1,
        started_at=T0 + timedelta(hours=hour),
        ended_at=T0 + timedelta(hours=hour + 1),
        rows=len(frame),
        profile=profile,
        drift=compare(reference, profile) if len(frame) >= 100 else None,
        performance=performance,
        estimated={"estimate": True, "roc_auc": 0.78},
    )


def income_shift(seed: int, rows: int = 2000) -> pd.DataFrame:
    frame = generate_applications(rows, seed=seed)
    frame["income"] = frame["income"] * 1.5
    return frame


def report_of(
    current: WindowResult, reference: Profile, history: list[WindowResult] | None = None
) -> MonitorReport:
    return build_report("credit", current, reference, history or [], generated_at=T0)


def test_report_is_self_contained_and_lists_drifted_features_first(
    trained: TrainedModel, reference: Profile
) -> None:
    history = [
        window(trained, reference, generate_applications(2000, seed=20 + h), h) for h in range(3)
    ]
    current = window(trained, reference, income_shift(30), 3)
    report = report_of(current, reference, history)
    html = render_html(report)

    assert not EXTERNAL.search(html)
    assert "<link" not in html
    assert "<script" not in html
    assert "<img" not in html
    assert report.features[0]["name"] == "income"
    assert report.features[0]["drifted"]
    drifted = [f["drifted"] for f in report.features]
    assert drifted == sorted(drifted, reverse=True)  # every drifted row before every stable one
    # the table lists income first, and income has its own distribution picture
    rows = re.findall(r'<td class="name">([^<]+)', html)
    assert rows[0] == "income"
    assert next(d.name for d in report.distributions) == "income"
    assert html.count("<svg") == picture_count(report)
    assert "features drifted: income" in report.verdict[0]
    assert len(report.timeline) == 4


def test_report_verdict_gives_auc_with_interval_and_coverage(
    trained: TrainedModel, reference: Profile
) -> None:
    report = report_of(window(trained, reference, generate_applications(2000, seed=40)), reference)

    auc = next(line for line in report.verdict if line.startswith("AUC"))
    assert re.fullmatch(
        r"AUC 0\.\d\d \(0\.\d\d\u20130\.\d\d\) on 40% labelled \(800 labels\)\.", auc
    )
    assert report.status in ("stable", "watch")


def test_report_json_round_trips(trained: TrainedModel, reference: Profile) -> None:
    report = report_of(window(trained, reference, income_shift(50)), reference)

    data = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert MonitorReport.from_dict(data) == report
    assert render_html(MonitorReport.from_dict(data)) == render_html(report)


def test_report_without_decisions_is_readable(trained: TrainedModel, reference: Profile) -> None:
    empty = window(trained, reference, generate_applications(100, seed=1).head(0), labelled=0)
    report = report_of(replace(empty, performance=None, estimated=None), reference)
    html = render_html(report)

    assert report.status == "not judged"
    assert report.verdict[0].startswith("Drift not judged: the window has 0 decisions")
    assert "performance unknown" in report.verdict[-1]
    assert "No drift table" in html
    assert "No labels and no label-free estimates yet" in html


def test_report_without_labels_shows_the_estimate(
    trained: TrainedModel, reference: Profile
) -> None:
    current = window(trained, reference, generate_applications(500, seed=2), labelled=0)
    report = report_of(current, reference)
    html = render_html(report)

    assert report.verdict[-1].startswith("No labels yet; estimated AUC 0.78")
    assert "AUC (estimated, no labels)" in html
    assert "No decision in these windows has a label yet" in html


def test_report_escapes_names_from_data(reference: Profile) -> None:
    hostile = "<script>alert(1)</script>"
    frame = pd.DataFrame(
        {hostile: np.r_[np.zeros(200), np.ones(200)], "kind": ["a"] * 200 + ["<b>x</b>"] * 200}
    )
    schema = Schema({hostile: "numeric", "kind": "categorical"})
    base = profile_frame(frame.head(200), schema)
    current = profile_frame(frame.tail(200), schema, base)
    result = WindowResult(
        deployment="<i>dep</i>",
        model_name="m",
        model_version=1,
        started_at=T0,
        ended_at=T0 + timedelta(hours=1),
        rows=200,
        profile=current,
        drift=compare(base, current),
        performance=None,
        estimated=None,
    )
    report = build_report("<i>dep</i>", result, base, generated_at=T0)
    html = render_html(report)

    assert report.drifted_features == 2
    assert "<script" not in html
    assert "<b>x" not in html
    assert "<i>dep" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # a two-valued numeric column is drawn per value; the value the reference lacked is flagged
    flag = next(d for d in report.distributions if d.name == hostile)
    assert (flag.labels, flag.reference, flag.current) == (["0", "1"], [1.0, 0.0], [0.0, 1.0])
    assert flag.flagged == [False, True]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", WindowChoice(start=T0 - timedelta(hours=24), end=T0)),
        ("7d", WindowChoice(start=T0 - timedelta(days=7), end=T0)),
        ("90m", WindowChoice(start=T0 - timedelta(minutes=90), end=T0)),
        ("rows:5000", WindowChoice(rows=5000, end=T0)),
        (
            "2026-11-01..2026-11-08",
            WindowChoice(
                start=datetime(2026, 11, 1, tzinfo=UTC), end=datetime(2026, 11, 8, tzinfo=UTC)
            ),
        ),
        (
            "2026-11-01T06:00..2026-11-01T12:00+01:00",
            WindowChoice(
                start=datetime(2026, 11, 1, 6, tzinfo=UTC),
                end=datetime(2026, 11, 1, 11, tzinfo=UTC),
            ),
        ),
    ],
)
def test_parse_window_accepts_durations_rows_and_ranges(text: str, expected: WindowChoice) -> None:
    assert parse_window(text, T0) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("0h", "positive duration"),
        ("yesterday", "24h, 7d, rows:5000 or START..END"),
        ("rows:0", "whole number N ≥ 1"),
        ("rows:many", "whole number N ≥ 1"),
        ("2026-11-08..2026-11-01", "start before it ends"),
        ("2026-13-01..2026-11-08", "ISO dates or date-times"),
    ],
)
def test_parse_window_refuses_bad_values_clearly(text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        parse_window(text, T0)


# -- the command, end to end on SQLite and PostgreSQL ------------------------------------


def decide(
    database: Database, trained: TrainedModel, frame: pd.DataFrame, start: datetime, labelled: float
) -> None:
    """Decisions as the serving path logs them, one a second from `start`, some labelled."""
    frame = scored(trained, frame)
    inputs = frame[FEATURES].astype(object).where(frame[FEATURES].notna(), None)
    rng = np.random.default_rng(0)
    with database.transaction() as session:
        for i, (record, score, label) in enumerate(
            zip(inputs.to_dict("records"), frame["score"], frame["default"], strict=True)
        ):
            decision_id = str(uuid.uuid4())
            at = start + timedelta(seconds=i)
            session.add(
                DecisionRow(
                    id=decision_id,
                    created_at=at,
                    deployment="credit",
                    model_name="credit",
                    model_version=1,
                    subject_key=None,
                    inputs={k: (str(v) if isinstance(v, str) else v) for k, v in record.items()},
                    outputs={"score": float(score)},
                    outcome="approve",
                    latency_ms=1.0,
                    guard=None,
                    policy=None,
                    explanation=None,
                )
            )
            if rng.random() < labelled:
                session.flush()
                add_feedback(
                    session,
                    decision_id=decision_id,
                    deployment="credit",
                    model_name="credit",
                    model_version=1,
                    subject_key=None,
                    label=int(label),
                    source="api",
                    sampling_probability=None,
                    actor=None,
                    created_at=at,
                )


@pytest.fixture
def deployed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, database_url: str, trained: TrainedModel
) -> Path:
    """A registered credit model with a labelled reference, three stored hourly windows and
    a fourth hour of decisions whose incomes are 1.5 times higher; returns the spec path."""
    home = tmp_path / ".bastion"
    monkeypatch.setenv("BASTION_HOME", str(home))
    monkeypatch.setenv("BASTION_DATABASE_URL", database_url)
    path = trained.save(tmp_path / "credit.txt")
    database = Database(database_url)
    database.migrate()
    try:
        registry = Registry(database, ArtifactStore(home / "artifacts"))
        sample = trained.test_frame[[*FEATURES, "default"]]
        registry.register("credit", path, sample=sample, label_column="default")
        service = WindowService(database, registry, clock=lambda: T0 + timedelta(hours=4))
        spec = tmp_path / "bastion.yaml"
        spec.write_text(
            "deployments:\n  credit:\n    model: credit:1\n"
            "    policy: {bands: {approve_below: 0.1, decline_at_or_above: 0.3}}\n"
            "    monitor: {window_minutes: 60, min_rows: 100}\n"
        )
        from bastion.spec import load_spec

        target = load_spec(spec).deployments["credit"]
        for hour in range(3):
            start = T0 + timedelta(hours=hour)
            decide(
                database,
                trained,
                generate_applications(600, seed=60 + hour),
                start,
                0.5 - 0.1 * hour,
            )
            service.store(
                service.compute("credit", target, start=start, end=start + timedelta(hours=1))
            )
        decide(database, trained, income_shift(63, 600), T0 + timedelta(hours=3), 0.1)
    finally:
        database.dispose()
    return spec


def test_monitor_report_command_writes_html_and_json(deployed: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    result = CliRunner().invoke(
        app,
        [
            "monitor",
            "report",
            "credit",
            "--spec",
            str(deployed),
            "-o",
            str(out),
            "--json",
            "--window",
            "2026-11-20T11:00..2026-11-20T12:00",
        ],
    )

    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["features"][0]["name"] == "income"
    assert data["features"][0]["drifted"]
    assert data["rows"] == 600
    assert [p["rows"] for p in data["timeline"]] == [600, 600, 600, 600]
    assert data["timeline"][0]["label_coverage"] > data["timeline"][-1]["label_coverage"] > 0
    html = out.read_text(encoding="utf-8")
    assert not EXTERNAL.search(html)
    assert "Monitoring report · credit" in html
    assert ">income<" in html


def test_monitor_report_command_refuses_bad_window_and_missing_output(tmp_path: Path) -> None:
    runner = CliRunner()
    deployed = tmp_path / "bastion.yaml"  # both are refused before the spec is read
    bad = runner.invoke(
        app, ["monitor", "report", "credit", "--spec", str(deployed), "--json", "--window", "soon"]
    )
    nowhere = runner.invoke(app, ["monitor", "report", "credit", "--spec", str(deployed)])

    assert isinstance(bad.exception, InvalidInput)
    assert "--window must look like" in str(bad.exception)
    assert isinstance(nowhere.exception, InvalidInput)
    assert "-o report.html" in str(nowhere.exception)


def test_report_draws_text_descriptors_and_new_categories() -> None:
    schema = Schema({"channel": "categorical", "note": "text"})
    base = profile_frame(generate_applications(2000, seed=3), schema)
    moved = generate_applications(2000, seed=4, drift="noisy_notes")
    moved["channel"] = moved["channel"].astype(str).where(moved.index % 5 > 0, "kiosk")
    current = profile_frame(moved, schema, base)
    result = WindowResult(
        deployment="credit",
        model_name="credit",
        model_version=1,
        started_at=T0,
        ended_at=T0 + timedelta(hours=1),
        rows=2000,
        profile=current,
        drift=compare(base, current),
        performance=None,
        estimated=None,
    )
    report = build_report("credit", result, base, generated_at=T0)
    bars = {d.name: d for d in report.distributions}

    assert "channel" in bars
    assert any(name.startswith("note.") for name in bars)
    channel = bars["channel"]
    new = channel.labels.index("kiosk (new)")
    assert channel.flagged[new]
    assert channel.reference[new] == 0.0
    assert channel.current[new] == pytest.approx(0.2)
    assert report.prediction_distribution is None
    assert "No predictions were profiled" in render_html(report)


def test_report_of_a_sentence_embedding_drift_draws_no_histogram_for_it() -> None:
    notes = [f"I need a loan for item {i}" for i in range(60)]
    schema = Schema({"note": "text"})
    base = profile_frame(pd.DataFrame({"note": notes}), schema)
    current = profile_frame(pd.DataFrame({"note": notes[:40]}), schema, base)
    rng = np.random.default_rng(1)
    drift = compare(
        base,
        current,
        reference_embeddings={"note": rng.normal(size=(60, 8))},
        current_embeddings={"note": rng.normal(1.0, 1.0, size=(40, 8))},
    )
    result = WindowResult(
        deployment="credit",
        model_name="m",
        model_version=1,
        started_at=T0,
        ended_at=T0 + timedelta(hours=1),
        rows=40,
        profile=current,
        drift=drift,
        performance=None,
        estimated=None,
    )

    report = build_report("credit", result, base, generated_at=T0)
    html = render_html(report)

    assert report.drifted_features == 1
    assert "embedding" in html  # listed in the drift table
    # vectors have no bars to draw; the descriptors still do
    assert "note.embedding" not in [d.name for d in report.distributions]
