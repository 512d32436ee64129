"""Writing tuned thresholds into bastion.yaml: minimal edits, validated, atomic, audited."""

from __future__ import annotations

import difflib
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bastion.errors import InvalidInput, NotFound, SpecError
from bastion.policy.apply import ACTION, apply_thresholds, edited_spec_text
from bastion.policy.bands import ScoreBands
from bastion.spec import load_spec, parse_spec
from bastion.store import Database
from bastion.store.audit import AuditLog, state_digest

NOW = datetime(2026, 11, 26, 16, 30, tzinfo=UTC)
NEW = ScoreBands(approve_below=0.123456789, decline_at_or_above=0.6180339887)

WITH_BANDS = """\
# Credit decisions, reviewed by risk.
version: 1
deployments:
  credit:
    model: credit-risk@production   # always the production version
    policy:
      rules:
        - {name: underage, when: "features.age < 18", outcome: decline, reason: R01}
      bands:
        approve_below: 0.2    # tuned 2026-10
        decline_at_or_above: 0.7
      review: {sla_minutes: 120}
  fraud:
    model: fraud:3
"""

FLOW_BANDS = """\
deployments:
  credit:
    model: credit-risk:1
    policy:
      bands: {approve_below: 0.2, decline_at_or_above: '0.7'}  # quoted on purpose
"""

NO_POLICY = """\
deployments:
    credit:
        model: credit-risk:1
        # keep the batches small
        batching: {max_batch_size: 8}
    fraud:
        model: fraud:3
"""

POLICY_WITHOUT_BANDS = """\
deployments:
  credit:
    model: credit-risk:1
    policy:
      fallback: {outcome: review, reason: DOWN}
"""

FLOW_DEPLOYMENT = """\
# one line per deployment
deployments:
  credit: {model: "credit-risk:1"}
"""


def _changed_lines(before: str, after: str) -> tuple[list[str], list[str]]:
    removed, added = [], []
    for line in difflib.ndiff(before.splitlines(), after.splitlines()):
        if line.startswith("- "):
            removed.append(line[2:])
        elif line.startswith("+ "):
            added.append(line[2:])
    return removed, added


def _bands(text: str, deployment: str = "credit") -> ScoreBands | None:
    policy = parse_spec(text).deployments[deployment].policy
    return None if policy is None else policy.bands


def test_existing_bands_change_only_the_two_numbers() -> None:
    text = edited_spec_text(WITH_BANDS, "credit", NEW, source="bastion.yaml")

    removed, added = _changed_lines(WITH_BANDS, text)
    assert removed == [
        "        approve_below: 0.2    # tuned 2026-10",
        "        decline_at_or_above: 0.7",
    ]
    assert added == [
        "        approve_below: 0.123456789    # tuned 2026-10",
        "        decline_at_or_above: 0.6180339887",
    ]
    assert _bands(text) == NEW


def test_flow_style_bands_keep_their_layout() -> None:
    text = edited_spec_text(FLOW_BANDS, "credit", NEW, source="bastion.yaml")

    assert (
        "      bands: {approve_below: 0.123456789, decline_at_or_above: 0.6180339887}  "
        "# quoted on purpose\n" in text
    )
    assert _changed_lines(FLOW_BANDS, text)[0] == [FLOW_BANDS.splitlines()[4]]


def test_missing_policy_is_appended_to_the_deployment() -> None:
    text = edited_spec_text(NO_POLICY, "credit", NEW, source="bastion.yaml")

    removed, added = _changed_lines(NO_POLICY, text)
    assert removed == []
    assert added == [
        "        policy:",
        "          bands:",
        "            approve_below: 0.123456789",
        "            decline_at_or_above: 0.6180339887",
    ]
    assert text.index("batching:") < text.index("policy:") < text.index("fraud:")
    assert _bands(text) == NEW
    assert _bands(text, "fraud") is None


def test_appended_policy_leaves_trailing_comments_to_what_follows() -> None:
    spec = """\
deployments:
  credit:
    model: credit-risk:1
# a comment at column 0 inside the deployment
    description: loans

  # the fraud deployment
  fraud:
    model: fraud:3"""

    text = edited_spec_text(spec, "fraud", NEW, source="bastion.yaml")
    text = edited_spec_text(text, "credit", NEW, source="bastion.yaml")

    assert text.splitlines()[4:] == [
        "    description: loans",
        "    policy:",
        "      bands:",
        "        approve_below: 0.123456789",
        "        decline_at_or_above: 0.6180339887",
        "",
        "  # the fraud deployment",
        "  fraud:",
        "    model: fraud:3",
        "    policy:",
        "      bands:",
        "        approve_below: 0.123456789",
        "        decline_at_or_above: 0.6180339887",
    ]


def test_missing_bands_are_added_to_the_policy() -> None:
    text = edited_spec_text(POLICY_WITHOUT_BANDS, "credit", NEW, source="bastion.yaml")

    assert _changed_lines(POLICY_WITHOUT_BANDS, text)[0] == []
    policy = parse_spec(text).deployments["credit"].policy
    assert policy is not None
    assert policy.bands == NEW
    assert policy.fallback.reason == "DOWN"


def test_flow_style_deployment_is_re_emitted_with_comments() -> None:
    text = edited_spec_text(FLOW_DEPLOYMENT, "credit", NEW, source="bastion.yaml")

    assert text.startswith("# one line per deployment\n")
    assert _bands(text) == NEW


def test_unknown_deployment_is_named() -> None:
    with pytest.raises(NotFound, match=r"no deployment 'loans'.*deployments: credit, fraud"):
        edited_spec_text(WITH_BANDS, "loans", NEW, source="bastion.yaml")


def test_value_bands_deployment_is_refused() -> None:
    regressor = """\
deployments:
  limit:
    model: limit:1
    policy:
      value_bands: [{name: low, outcome: approve, below: 100}, {name: high, outcome: review}]
"""
    with pytest.raises(InvalidInput, match="uses value_bands"):
        edited_spec_text(regressor, "limit", NEW, source="bastion.yaml")


@pytest.fixture
def spec_file(tmp_path: Path) -> Path:
    path = tmp_path / "bastion.yaml"
    path.write_text(WITH_BANDS, encoding="utf-8")
    return path


def test_apply_writes_the_file_and_audits_digests(spec_file: Path, database: Database) -> None:
    before_digest = state_digest(load_spec(spec_file).model_dump(mode="json"))

    result = apply_thresholds(
        spec_file,
        "credit",
        NEW,
        database=database,
        actor="risk-team",
        details={"cost_per_case": 0.31},
        clock=lambda: NOW,
    )

    after_spec = load_spec(spec_file)
    policy = after_spec.deployments["credit"].policy
    assert policy is not None
    assert policy.bands == NEW
    with database.transaction() as session:
        (event,) = AuditLog.list(session, action=ACTION)
    assert (event.actor, event.target, event.at) == ("risk-team", "credit", NOW)
    assert event.before_digest == before_digest == result.before_digest
    assert event.after_digest == state_digest(after_spec.model_dump(mode="json"))
    assert event.details == {
        "spec": str(spec_file),
        "deployment": "credit",
        "before": {"approve_below": 0.2, "decline_at_or_above": 0.7},
        "after": {"approve_below": 0.123456789, "decline_at_or_above": 0.6180339887},
        "cost_per_case": 0.31,
    }


def test_apply_of_the_same_bands_writes_and_records_nothing(
    spec_file: Path, database: Database
) -> None:
    same = ScoreBands(approve_below=0.2, decline_at_or_above=0.7)

    result = apply_thresholds(spec_file, "credit", same, database=database, actor="risk-team")

    assert not result.changed
    assert spec_file.read_text(encoding="utf-8") == WITH_BANDS
    with database.transaction() as session:
        assert AuditLog.list(session, action=ACTION) == []


def test_apply_to_an_invalid_spec_changes_nothing(tmp_path: Path, database: Database) -> None:
    (tmp_path / "spec").mkdir()
    path = tmp_path / "spec" / "bastion.yaml"
    broken = WITH_BANDS.replace("sla_minutes: 120", "sla_minutes: -1")
    path.write_text(broken, encoding="utf-8")

    with pytest.raises(SpecError, match="sla_minutes"):
        apply_thresholds(path, "credit", NEW, database=database, actor="risk-team")

    assert path.read_text(encoding="utf-8") == broken
    assert list(path.parent.iterdir()) == [path]


def test_apply_whose_audit_fails_leaves_the_file_alone(spec_file: Path, database: Database) -> None:
    with pytest.raises(InvalidInput, match="actor must be 1 to 128 characters"):
        apply_thresholds(spec_file, "credit", NEW, database=database, actor="x" * 200)

    assert spec_file.read_text(encoding="utf-8") == WITH_BANDS
