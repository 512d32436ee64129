from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from bastion.errors import SpecError
from bastion.spec import Deployment, ModelRef, Spec, dump_spec, load_spec, parse_spec, spec_schema

VALID = """\
version: 1
server:
  max_body_bytes: 65536
deployments:
  credit:
    model: credit:3
    description: Consumer credit scoring
    batching:
      max_batch_size: 32
      max_wait_ms: 5
    model_timeout_ms: 2000
  churn:
    model: churn@production
"""


def _spec_error(text: str) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_spec(text, source="bastion.yaml")
    return caught.value


def test_parse_spec_reads_a_valid_spec() -> None:
    spec = parse_spec(VALID)

    credit = spec.deployments["credit"]
    assert credit.model == ModelRef(name="credit", version=3)
    assert credit.description == "Consumer credit scoring"
    assert credit.batching.max_batch_size == 32
    assert credit.batching.max_wait_ms == 5
    assert credit.model_timeout_ms == 2000
    assert spec.deployments["churn"].model == ModelRef(name="churn", stage="production")
    assert spec.server.max_body_bytes == 65536


def test_parse_spec_fills_defaults() -> None:
    spec = parse_spec("deployments:\n  d:\n    model: m:1\n")

    deployment = spec.deployments["d"]
    assert deployment.batching.max_batch_size == 64
    assert deployment.batching.max_wait_ms == 2.0
    assert deployment.guard.contract.required == "reject"
    assert deployment.guard.ood.enabled
    assert deployment.guard.pii is None
    assert deployment.retention_days is None
    assert spec.server.max_instances == 1000


def test_parse_spec_empty_text_is_an_empty_spec() -> None:
    assert parse_spec("") == Spec()


def test_model_ref_parses_a_pinned_version() -> None:
    ref = ModelRef.parse("credit:3")

    assert (ref.name, ref.version, ref.stage) == ("credit", 3, None)
    assert str(ref) == "credit:3"


def test_model_ref_parses_a_stage() -> None:
    ref = ModelRef.parse("credit.v2_eu-west@production")

    assert (ref.name, ref.version, ref.stage) == ("credit.v2_eu-west", None, "production")
    assert str(ref) == "credit.v2_eu-west@production"


@pytest.mark.parametrize(
    "text",
    ["credit", "credit:", "credit:0", "credit:-1", "@production", "credit:1@production", "-m:1"],
)
def test_model_ref_rejects_malformed_text(text: str) -> None:
    with pytest.raises(ValueError, match="NAME:VERSION") as caught:
        ModelRef.parse(text)

    assert repr(text) in str(caught.value)


def test_model_ref_rejects_an_unknown_stage() -> None:
    with pytest.raises(ValueError, match="stage must be one of none, staging, production"):
        ModelRef.parse("credit@prod")


@pytest.mark.parametrize(
    "fields",
    [
        {"name": "m"},
        {"name": "m", "version": 1, "stage": "production"},
        {"name": "a b", "version": 1},
    ],
)
def test_model_ref_requires_exactly_a_version_or_a_stage(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError, match="NAME:VERSION"):
        ModelRef.model_validate(fields)


def test_parse_spec_names_field_and_line_of_a_negative_max_wait() -> None:
    text = """\
deployments:
  credit:
    model: credit:3
    batching:
      max_batch_size: 8
      max_wait_ms: -5
"""
    error = _spec_error(text)

    assert [e.field for e in error.errors] == ["deployments.credit.batching.max_wait_ms (line 6)"]
    assert "greater than or equal to 0" in error.errors[0].message
    assert error.message.startswith("bastion.yaml: deployments.credit.batching.max_wait_ms")


def test_parse_spec_names_field_and_line_of_an_unknown_key() -> None:
    text = """\
deployments:
  credit:
    model: credit:3

    colour: red
"""
    error = _spec_error(text)

    assert [e.field for e in error.errors] == ["deployments.credit.colour (line 5)"]
    assert "Extra inputs are not permitted" in error.errors[0].message


def test_parse_spec_names_field_and_line_of_a_bad_model_ref() -> None:
    text = """\
deployments:
  fraud:
    model: fraud:1
  credit:
    description: scoring
    model: "credit#3"
"""
    error = _spec_error(text)

    assert [e.field for e in error.errors] == ["deployments.credit.model (line 6)"]
    assert "NAME:VERSION" in error.errors[0].message
    assert "'credit#3'" in error.errors[0].message


def test_parse_spec_rejects_a_model_ref_that_is_not_text() -> None:
    error = _spec_error("deployments:\n  credit:\n    model: 3\n")

    assert [e.field for e in error.errors] == ["deployments.credit.model (line 3)"]
    assert "NAME:VERSION" in error.errors[0].message


def test_parse_spec_rejects_content_in_a_reserved_section() -> None:
    text = """\
deployments:
  credit:
    model: credit:3
    rollout: {x: 1}
"""
    error = _spec_error(text)

    assert [e.field for e in error.errors] == ["deployments.credit.rollout.x (line 4)"]


def test_parse_spec_accepts_an_empty_reserved_section() -> None:
    spec = parse_spec("deployments:\n  credit:\n    model: credit:3\n    rollout: {}\n")

    assert spec.deployments["credit"].rollout is not None


def test_parse_spec_names_the_line_of_a_policy_rule_that_does_not_compile() -> None:
    text = """\
deployments:
  credit:
    model: credit:3
    policy:
      rules:
        - {name: ok, when: "features.age < 18", outcome: decline, reason: R01}
        - {name: bad, when: "features.amount > > 3", outcome: review, reason: R02}
"""
    error = _spec_error(text)

    (field,) = error.errors
    assert field.field == "deployments.credit.policy.rules.1.when (line 7)"
    assert "does not compile at line 1, column 19" in field.message


def test_parse_spec_reads_the_monitor_section() -> None:
    text = """\
deployments:
  credit:
    model: credit:3
    monitor:
      window_rows: 500
      costs: {fp: 1, fn: 5}
      alerts:
        - {name: psi, when: "features.exists(f, features[f].psi > 0.2)", for_windows: 2}
      webhooks: [{url: "https://hooks.example.com/x"}]
"""
    monitor = parse_spec(text).deployments["credit"].monitor

    assert monitor is not None
    assert (monitor.window_rows, monitor.alerts[0].for_windows) == (500, 2)


def test_dump_spec_round_trips_a_monitor_section_by_rows() -> None:
    spec = parse_spec(
        "deployments:\n  credit:\n    model: credit:3\n    monitor: {window_rows: 500}\n"
    )

    assert parse_spec(dump_spec(spec)) == spec


@pytest.mark.parametrize(
    ("monitor", "field", "message"),
    [
        ('{alerts: [{name: a, when: "features >"}]}', "alerts.0.when", "does not compile"),
        ("{window_minutes: 5, window_rows: 100}", "monitor", "not both"),
        ('{alerts: [{name: a, when: "true"}, {name: a, when: "false"}]}', "monitor", "unique"),
        ('{webhooks: [{url: "ftp://x"}]}', "webhooks.0.url", "pattern"),
    ],
)
def test_parse_spec_refuses_a_bad_monitor_section(monitor: str, field: str, message: str) -> None:
    error = _spec_error(f"deployments:\n  credit:\n    model: credit:3\n    monitor: {monitor}\n")

    assert field in error.errors[0].field
    assert message in error.errors[0].message


def test_parse_spec_reports_every_bad_field() -> None:
    text = """\
deployments:
  a:
    model: a:1
    batching:
      max_batch_size: 0
  b:
    model: b:1
    model_timeout_ms: 0
"""
    error = _spec_error(text)

    assert [e.field for e in error.errors] == [
        "deployments.a.batching.max_batch_size (line 5)",
        "deployments.b.model_timeout_ms (line 8)",
    ]


def test_parse_spec_reports_a_missing_field_at_its_parent() -> None:
    error = _spec_error("deployments:\n  credit:\n    description: no model\n")

    assert [e.field for e in error.errors] == ["deployments.credit.model (line 2)"]


def test_parse_spec_rejects_a_bad_deployment_name() -> None:
    error = _spec_error('deployments:\n  "bad name!":\n    model: m:1\n')

    assert "'bad name!'" in error.message


def test_parse_spec_reports_the_line_of_invalid_yaml() -> None:
    text = "deployments:\n  credit:\n    model: credit:3\n\tbatching: {}\n"

    error = _spec_error(text)

    assert "not valid YAML at line 4" in error.message
    assert error.message.startswith("bastion.yaml:")


def test_parse_spec_reports_the_line_of_a_duplicate_key() -> None:
    text = "deployments:\n  a:\n    model: m:1\n  a:\n    model: m:2\n"

    error = _spec_error(text)

    assert "not valid YAML at line 4" in error.message
    assert "duplicate key" in error.message


def test_parse_spec_rejects_a_top_level_that_is_not_a_mapping() -> None:
    error = _spec_error("- credit\n- churn\n")

    assert "top level must be a mapping" in error.message


def test_load_spec_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text(VALID, encoding="utf-8")

    assert load_spec(path) == parse_spec(VALID)


def test_load_spec_names_the_file_in_errors(tmp_path: Path) -> None:
    path = tmp_path / "bastion.yaml"
    path.write_text("deployments:\n  d:\n    model: nope\n", encoding="utf-8")

    with pytest.raises(SpecError, match=r"bastion\.yaml: deployments\.d\.model \(line 3\)"):
        load_spec(path)


def test_load_spec_reports_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cannot read spec"):
        load_spec(tmp_path / "missing.yaml")


def test_spec_schema_is_a_json_schema_with_deployments() -> None:
    schema = spec_schema()

    assert schema["type"] == "object"
    assert "deployments" in schema["properties"]
    assert schema["additionalProperties"] is False
    assert "Deployment" in schema["$defs"]
    assert "model" in schema["$defs"]["Deployment"]["required"]


def test_dump_spec_round_trips_through_parse_spec() -> None:
    spec = parse_spec(VALID)
    spec.deployments["shadowed"] = Deployment.model_validate(
        {"model": "credit:4", "guard": {}, "batching": {"max_wait_ms": 0}}
    )

    text = dump_spec(spec)

    assert "model: credit:3" in text
    assert "model: churn@production" in text
    assert parse_spec(text) == spec


def test_dump_spec_round_trips_an_empty_spec() -> None:
    assert parse_spec(dump_spec(Spec())) == Spec()


GUARDED = """\
deployments:
  credit:
    model: credit@production
    retention_days: 30
    guard:
      contract: {range: reject, category: flag, range_tolerance: 0.2, unknown_fields: reject}
      ood: {threshold: 0.95}
      pii:
        fields: [email]
        scan: [note]
        entities: {EMAIL: mask, PHONE: pseudonymize, EMPLOYEE_ID: replace}
        countries: [de, FR]
        model_sees: redacted
        custom:
          - name: EMPLOYEE_ID
            pattern: 'EMP-(?P<value>\\d{6})'
"""


def test_parse_spec_reads_the_guard_section() -> None:
    deployment = parse_spec(GUARDED).deployments["credit"]

    guard = deployment.guard
    assert guard.contract.range == "reject"
    assert guard.contract.category == "flag"
    assert guard.contract.unknown_fields == "reject"
    assert guard.ood.threshold == 0.95
    assert guard.pii is not None
    assert guard.pii.fields == {"email": "pseudonymize"}
    assert guard.pii.scan == ["note"]
    assert guard.pii.countries == ["DE", "FR"]
    assert guard.pii.model_sees == "redacted"
    assert guard.pii.custom[0].name == "EMPLOYEE_ID"
    assert guard.pii.personal_fields == {"email", "note"}
    assert deployment.retention_days == 30


def test_dump_spec_round_trips_the_guard_section() -> None:
    spec = parse_spec(GUARDED)

    assert parse_spec(dump_spec(spec)) == spec


@pytest.mark.parametrize(
    ("section", "field"),
    [
        ("contract: {range: maybe}", "deployments.credit.guard.contract.range (line 5)"),
        (
            "contract: {range_tolerance: -1}",
            "deployments.credit.guard.contract.range_tolerance (line 5)",
        ),
        ("contract: {colour: red}", "deployments.credit.guard.contract.colour (line 5)"),
        ("ood: {threshold: 2}", "deployments.credit.guard.ood.threshold (line 5)"),
        ("pii: {fields: {email: hide}}", "deployments.credit.guard.pii.fields.email (line 5)"),
        ("pii: {entities: {PASSPORT: mask}}", "deployments.credit.guard.pii.entities (line 5)"),
        ("pii: {entities: {EMAIL: blur}}", "deployments.credit.guard.pii.entities.EMAIL (line 5)"),
        ("pii: {countries: [XX]}", "deployments.credit.guard.pii.countries (line 5)"),
        ("pii: {regions: [ZZ]}", "deployments.credit.guard.pii.regions (line 5)"),
        ("pii: {model_sees: sometimes}", "deployments.credit.guard.pii.model_sees (line 5)"),
        (
            "pii: {custom: [{name: EMAIL, pattern: x}]}",
            "deployments.credit.guard.pii.custom.0.name (line 5)",
        ),
        (
            "pii: {custom: [{name: X, pattern: '(('}]}",
            "deployments.credit.guard.pii.custom.0.pattern (line 5)",
        ),
    ],
)
def test_parse_spec_names_field_and_line_of_a_bad_guard_value(section: str, field: str) -> None:
    text = f"deployments:\n  credit:\n    model: credit:3\n    guard:\n      {section}\n"

    error = _spec_error(text)

    assert [e.field for e in error.errors] == [field]


@pytest.mark.parametrize("days", [0, -3, "soon"])
def test_parse_spec_rejects_a_bad_retention(days: object) -> None:
    text = f"deployments:\n  credit:\n    model: credit:3\n    retention_days: {days}\n"

    error = _spec_error(text)

    assert [e.field for e in error.errors] == ["deployments.credit.retention_days (line 4)"]


def test_parse_spec_reads_rate_limits_and_load_shedding() -> None:
    text = """\
deployments:
  credit:
    model: credit:3
    limits:
      requests_per_second: 200
      burst: 50
      per_key_requests_per_second: 20
      backend: redis
      on_backend_error: closed
      max_queue_rows: 256
      max_queue_delay_ms: 250
"""
    limits = parse_spec(text).deployments["credit"].limits

    assert (limits.requests_per_second, limits.burst) == (200, 50)
    assert (limits.per_key_requests_per_second, limits.per_key_burst) == (20, None)
    assert (limits.backend, limits.on_backend_error) == ("redis", "closed")
    assert (limits.max_queue_rows, limits.max_queue_delay_ms) == (256, 250)


def test_parse_spec_limits_default_to_load_shedding_only() -> None:
    limits = (
        parse_spec("deployments:\n  credit:\n    model: credit:3\n").deployments["credit"].limits
    )

    assert limits.requests_per_second is None
    assert limits.per_key_requests_per_second is None
    assert (limits.backend, limits.on_backend_error) == ("memory", "open")
    assert limits.max_queue_rows >= 1
    assert limits.max_queue_delay_ms > 0


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        ("requests_per_second: 0", "greater than 0"),
        ("burst: 0", "greater than or equal to 1"),
        ("backend: memcached", "'memory' or 'redis'"),
        ("on_backend_error: maybe", "'open' or 'closed'"),
        ("max_queue_rows: 0", "greater than or equal to 1"),
        ("max_queue_delay_ms: -1", "greater than 0"),
    ],
)
def test_parse_spec_names_field_and_line_of_a_bad_limit(setting: str, message: str) -> None:
    text = f"deployments:\n  credit:\n    model: credit:3\n    limits:\n      {setting}\n"
    error = _spec_error(text)

    field = setting.split(":")[0]
    assert [e.field for e in error.errors] == [f"deployments.credit.limits.{field} (line 5)"]
    assert message in error.errors[0].message


def test_parse_spec_rejects_a_burst_without_a_rate() -> None:
    error = _spec_error("deployments:\n  c:\n    model: c:3\n    limits: {per_key_burst: 5}\n")

    assert [e.field for e in error.errors] == ["deployments.c.limits (line 4)"]
    assert "per_key_burst needs per_key_requests_per_second" in error.errors[0].message
