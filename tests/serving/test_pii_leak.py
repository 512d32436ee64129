"""The leak test: traffic seeded with known personal data, then every store, log, metric and
error response searched for the raw values. None may appear. On SQLite and PostgreSQL."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from starlette.testclient import TestClient

from bastion.demo.train import TrainedModel
from bastion.registry import ModelVersion
from bastion.server.app import app_for, create_app
from bastion.serving.decision_log import DecisionLog
from bastion.serving.service import build_service
from bastion.settings import Settings
from bastion.spec import Spec, parse_spec
from bastion.store import Database
from tests.credentials import bearer
from tests.support import request_rows

DECIDE = "/v1/deployments/credit/decide"
UNREACHABLE = "postgresql+psycopg://root@127.0.0.1:1/test?connect_timeout=1"

EMAILS = ["ann.leak@example.org", "Bob.Secret@mail.example.com"]
PHONES = ["+1 212-555-0187", "030 1234567"]
IBANS = ["DE89 3704 0044 0532 0130 00", "GB82WEST12345698765432"]
CARDS = ["4111 1111 1111 1111", "5500-0000-0000-0004"]
SSNS = ["123-45-6789"]
SUBJECTS = ["subject-raw-7731", "cust-889911-secret"]
#: every raw value, and the normalised spellings a careless pseudonymizer could store
RAW = [
    *EMAILS,
    *(e.lower() for e in EMAILS),
    *PHONES,
    "+12125550187",
    *IBANS,
    "DE89370400440532013000",
    *CARDS,
    "4111111111111111",
    "5500000000000004",
    *SSNS,
    "123456789",
    *SUBJECTS,
]


@pytest.fixture
def pii_spec(served_version: ModelVersion) -> Spec:
    return parse_spec(
        """
deployments:
  credit:
    model: credit@production
    batching: {max_batch_size: 32, max_wait_ms: 1}
    guard:
      pii:
        fields: {email: pseudonymize, phone: mask}
        scan: [note]
        entities: {EMAIL: pseudonymize, PHONE: mask, CREDIT_CARD: mask, IBAN: replace,
                   US_SSN: drop}
        model_sees: redacted
"""
    )


def _note(i: int) -> str:
    return (
        f"Applicant mail {EMAILS[i % 2]}, call {PHONES[i % 2]}. Salary to "
        f"{IBANS[i % 2]}, card {CARDS[i % 2]}, SSN {SSNS[0]}. Wants a new kitchen."
    )


def _seed(client: TestClient, trained: TrainedModel) -> list[str]:
    """Good and bad requests carrying every raw value; return the error response bodies."""
    rows = request_rows(trained, 8)
    errors: list[str] = []
    for i, features in enumerate(rows):
        body = {
            "subject_id": SUBJECTS[i % 2],
            "features": {
                **features,
                "email": EMAILS[i % 2],
                "phone": PHONES[i % 2],
                "note": _note(i),
            },
        }
        response = client.post(DECIDE, json=body)
        assert response.status_code == 200, response.text
        assert response.json()["guard"]["pii"]["counts"]["EMAIL"] >= 1
    batch = [{**features, "email": EMAILS[0], "note": _note(i)} for i, features in enumerate(rows)]
    assert client.post(DECIDE, json={"subject_id": SUBJECTS[0], "instances": batch}).is_success
    bad_requests: list[dict[str, Any]] = [
        # a missing field next to personal data
        {
            "subject_id": SUBJECTS[1],
            "features": {
                **{k: v for k, v in rows[0].items() if k != "age"},
                "email": EMAILS[1],
                "note": _note(1),
            },
        },
        # personal data sent in a model field: the 422 must not echo it
        {"features": {**rows[0], "income": EMAILS[0], "channel": PHONES[0], "note": _note(0)}},
        {"features": {**rows[1], "country": IBANS[0], "amount": CARDS[0]}},
        {"instances": [{**rows[2], "channel": SSNS[0]}, {**rows[3], "email": EMAILS[1]}, 7]},
        # the subject id itself malformed, with personal data around it
        {"subject_id": {"id": SUBJECTS[0]}, "features": {**rows[0], "email": EMAILS[0]}},
    ]
    for body in bad_requests:
        response = client.post(DECIDE, json=body)
        assert response.status_code == 422, response.text
        errors.append(response.text)
    return errors


def _leaks(text: str) -> list[str]:
    return [value for value in RAW if value in text]


def _dump_tables(database_url: str) -> str:
    """Every row of every table, as text."""
    engine = sa.create_engine(database_url)
    try:
        metadata = sa.MetaData()
        metadata.reflect(engine)
        with engine.connect() as connection:
            dumped = [
                repr(row)
                for table in metadata.sorted_tables
                for row in connection.execute(sa.select(table))
            ]
    finally:
        engine.dispose()
    return "\n".join(dumped)


@pytest.fixture
def spooling_client(pii_spec: Spec, settings: Settings, admin_token: str) -> Iterator[TestClient]:
    """The same deployment with its decision log pointed at an unreachable database, so
    every record goes to the spool."""
    service = build_service(pii_spec, settings, lambda: datetime.now(UTC))
    service.decision_log = DecisionLog(Database(UNREACHABLE), settings.spool_dir)
    with TestClient(create_app(service), headers=bearer(admin_token)) as client:
        yield client


def test_no_raw_personal_value_reaches_any_store_log_metric_or_error(
    pii_spec: Spec,
    settings: Settings,
    admin_token: str,
    database_url: str,
    credit_model: tuple[Path, TrainedModel],
    caplog: pytest.LogCaptureFixture,
    request: pytest.FixtureRequest,
) -> None:
    caplog.set_level(logging.DEBUG)
    trained = credit_model[1]
    with TestClient(app_for(pii_spec, settings), headers=bearer(admin_token)) as client:
        errors = _seed(client, trained)
        metrics = client.get("/metrics").text
        stored = client.get(
            DECIDE.replace("/deployments/credit/decide", "/decisions/")
            + client.post(
                DECIDE, json={"features": {**request_rows(trained, 1)[0], "note": _note(0)}}
            ).json()["decision_id"]
        ).json()
    spooling: TestClient = request.getfixturevalue("spooling_client")
    errors += _seed(spooling, trained)
    spooling_metrics = spooling.get("/metrics").text

    # the redacted forms are there, so the searches below look at real records
    assert "<IBAN>" in stored["inputs"]["note"]
    assert stored["guard"]["pii"]["counts"]["IBAN"] == 1
    tables = _dump_tables(database_url)
    assert tables.count("<IBAN>") >= 8
    spooled = b"".join(p.read_bytes() for p in sorted(settings.spool_dir.glob("*.jsonl")))
    assert spooled.count(b"<IBAN>") >= 8
    assert "bastion_pii_redactions_total" in metrics

    assert _leaks(tables) == []
    assert _leaks(spooled.decode()) == []
    for error in errors:
        assert _leaks(error) == [], error
    assert _leaks(metrics + spooling_metrics) == []
    assert _leaks(caplog.text) == []
    assert _leaks("\n".join(str(r.args) for r in caplog.records)) == []
    if database_url.startswith("sqlite"):
        database_file = Path(database_url.removeprefix("sqlite:///"))
        raw_bytes = b"".join(
            path.read_bytes()
            for path in (database_file, database_file.with_name(database_file.name + "-wal"))
            if path.exists()
        )
        assert raw_bytes.count(b"<IBAN>") >= 8
        assert [v for v in RAW if v.encode() in raw_bytes] == []
