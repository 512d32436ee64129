from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from bastion.registry import ModelVersion, Registry, StageTransition, render_card
from bastion.registry.signature import ColumnSignature, InputSignature, OutputSignature
from bastion.runtime import LoadOptions
from tests.registry.conftest import TrainedModel

CREATED = datetime(2026, 11, 26, 9, 30, tzinfo=UTC)


def _version(**changes: object) -> ModelVersion:
    version = ModelVersion(
        name="credit",
        version=3,
        digest="ab" * 32,
        framework="lightgbm",
        artifact_path=Path("/artifacts/credit.txt"),
        options=LoadOptions(),
        library_versions={"python": "3.11.7", "lightgbm": "4.5.0"},
        input_signature=InputSignature(
            columns=[
                ColumnSignature(
                    name="income",
                    kind="numeric",
                    dtype="float64",
                    min=1.0,
                    max=99.5,
                    quantiles={"p05": 12.25, "p50": 50.0, "p95": 88.0},
                ),
                ColumnSignature(
                    name="region",
                    kind="categorical",
                    dtype="category",
                    nullable=True,
                    categories=["east", "west"],
                ),
                ColumnSignature(name="notes", kind="text", dtype="object", max_length=140),
                ColumnSignature(name="is_member", kind="boolean", dtype="bool"),
            ],
            rows_seen=500,
        ),
        output_signature=OutputSignature(task="classification", classes=["bad", "good"]),
        data_fingerprint="cd" * 32,
        metrics={"auc": 0.9123456789},
        tags={"team": "risk"},
        description="Retail credit scoring.",
        stage="production",
        author="alice",
        created_at=CREATED,
    )
    return dataclasses.replace(version, **changes)  # type: ignore[arg-type]


def _history() -> list[StageTransition]:
    return [
        StageTransition("credit", 2, "none", "production", "alice", CREATED),
        StageTransition("credit", 3, "none", "staging", "bob", CREATED),
        StageTransition("credit", 2, "production", "archived", "carol", CREATED),
        StageTransition("credit", 3, "staging", "production", "carol", CREATED),
    ]


def _lines_with(card: str, text: str) -> list[str]:
    return [line for line in card.splitlines() if text in line]


def test_render_card_titles_the_version() -> None:
    card = render_card(_version(), [])

    assert card.splitlines()[0] == "# Model card: credit:3"


def test_render_card_summarises_the_version() -> None:
    card = render_card(_version(), [])

    assert "| Framework | lightgbm |" in card
    assert "| Task | classification |" in card
    assert "| Classes | `bad`, `good` |" in card
    assert "| Stage | production |" in card
    assert f"| SHA-256 | `{'ab' * 32}` |" in card
    assert "| Author | alice |" in card
    assert "| Created | 2026-11-26T09:30:00+00:00 |" in card
    assert f"| Data fingerprint | `{'cd' * 32}` |" in card


def test_render_card_lists_library_versions() -> None:
    card = render_card(_version(), [])

    assert "| lightgbm | `4.5.0` |" in card
    assert "| python | `3.11.7` |" in card


def test_render_card_describes_each_input_column() -> None:
    card = render_card(_version(), [])

    assert "Inferred from 500 sample rows." in card
    assert "| Column | Kind | Dtype | Nullable | Values |" in card
    assert _lines_with(card, "`income`") == [
        "| `income` | numeric | `float64` | no | range 1 … 99.5; p05-p95 12.25 … 88 |"
    ]
    assert _lines_with(card, "`region`") == [
        "| `region` | categorical | `category` | yes | `east`, `west` |"
    ]
    assert _lines_with(card, "`notes`") == ["| `notes` | text | `object` | no | max length 140 |"]
    assert _lines_with(card, "`is_member`") == [
        "| `is_member` | boolean | `bool` | no | true / false |"
    ]


def test_render_card_truncates_long_category_lists() -> None:
    categories: list[str | int | float | bool] = [f"c{i:02d}" for i in range(14)]
    column = ColumnSignature(name="shop", kind="categorical", dtype="object", categories=categories)
    version = _version(input_signature=InputSignature(columns=[column], rows_seen=10))

    (line,) = _lines_with(render_card(version, []), "`shop`")

    assert "`c09`, … +4 more |" in line
    assert "`c10`" not in line


def test_render_card_says_when_only_column_names_are_known() -> None:
    column = ColumnSignature(name="x", kind="numeric", dtype="float64")
    version = _version(input_signature=InputSignature(columns=[column]), data_fingerprint=None)

    card = render_card(version, [])

    assert "Column names only: no sample was given at registration." in card
    assert "| `x` | numeric | `float64` | no | — |" in card
    assert "| Data fingerprint | — |" in card


def test_render_card_describes_outputs() -> None:
    classifier = render_card(_version(), [])
    regressor = render_card(_version(output_signature=OutputSignature(task="regression")), [])

    assert "one probability per class, in this order: `bad`, `good`." in classifier
    assert "Regression: one predicted value per row." in regressor
    assert "| Classes | — |" in regressor


def test_render_card_lists_metrics_tags_and_description() -> None:
    card = render_card(_version(), [])

    assert "| auc | 0.912346 |" in card
    assert "| team | risk |" in card
    assert "## Description\n\nRetail credit scoring." in card


def test_render_card_says_when_nothing_was_recorded() -> None:
    card = render_card(_version(metrics={}, tags={}, description=None, stage="none"), [])

    assert "## Metrics\n\nNone recorded." in card
    assert "## Tags\n\nNone." in card
    assert "## Description\n\nNone given." in card
    assert "No stage changes: the version is in stage none." in card


def test_render_card_shows_only_this_versions_stage_history() -> None:
    card = render_card(_version(), _history())

    history = card.split("## Stage history", 1)[1]
    assert history.strip().splitlines()[2:] == [
        "| 2026-11-26T09:30:00+00:00 | none | staging | bob |",
        "| 2026-11-26T09:30:00+00:00 | staging | production | carol |",
    ]


def test_render_card_escapes_table_breaking_text() -> None:
    card = render_card(_version(tags={"owner": "risk | fraud\nteam"}), [])

    assert "| owner | risk \\| fraud team |" in card


def test_render_card_of_a_registered_version(
    registry: Registry, lgbm_model: TrainedModel, lgbm_model_v2: TrainedModel
) -> None:
    registry.register("credit", lgbm_model.path, sample=lgbm_model.frame, author="alice")
    registry.register("credit", lgbm_model_v2.path, sample=lgbm_model.frame, author="alice")
    registry.set_stage("credit:1", "production", actor="alice")
    registry.set_stage("credit:2", "production", actor="bob")

    card = render_card(registry.get("credit:1"), registry.stage_history("credit"))

    assert card.startswith("# Model card: credit:1\n")
    assert "| Stage | archived |" in card
    assert "| `income` | numeric | `float64` | no | range " in card
    assert "| `region` | categorical | `category` | no | `east`, `north`, `south`, `west` |" in card
    history = card.split("## Stage history", 1)[1]
    assert "| none | production | alice |" in history
    assert "| production | archived | bob |" in history
    assert "| none | production | bob |" not in history


def test_render_card_states_the_score_calibration() -> None:
    plain = render_card(_version(), [])
    calibrated = render_card(
        _version(
            calibration={
                "method": "isotonic",
                "x": [0.0, 1.0],
                "y": [0.0, 1.0],
                "info": {"ece_before": 0.0612, "ece_after": 0.0137},
            }
        ),
        [],
    )

    assert "| Score calibration | none (scores served as the model gives them) |" in plain
    assert "| Score calibration | isotonic (ECE 0.0612 → 0.0137, cross-validated) |" in calibrated
