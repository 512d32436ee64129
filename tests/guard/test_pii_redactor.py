"""The Redactor: configuration from the spec, operators, overlaps, structured fields."""

from __future__ import annotations

import re
from typing import Literal

import pytest
from pydantic import BaseModel

from bastion.errors import SpecError
from bastion.guard.pii import (
    ENTITIES,
    Finding,
    Redactor,
    mask,
    normalize,
    pseudonym_tag,
    pseudonym_tags,
    resolve_overlaps,
)
from bastion.guard.pseudonym import Pseudonymizer

KEY = Pseudonymizer(b"k" * 32)
TEXT = "Mail ann@example.org, card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00."


def test_redact_replace_puts_entity_tags() -> None:
    result = Redactor({"EMAIL": "replace", "CREDIT_CARD": "replace", "IBAN": "replace"}).redact(
        TEXT
    )
    assert result.text == "Mail <EMAIL>, card <CREDIT_CARD>, IBAN <IBAN>."
    assert [f.entity for f in result.findings] == ["EMAIL", "CREDIT_CARD", "IBAN"]


def test_redact_mask_keeps_separators_and_last_four_of_cards() -> None:
    result = Redactor({"EMAIL": "mask", "CREDIT_CARD": "mask", "IBAN": "mask"}).redact(TEXT)
    assert result.text == (
        "Mail ***@*******.***, card **** **** **** 1111, IBAN **** **** **** **** **30 00."
    )


def test_redact_drop_removes_values() -> None:
    result = Redactor({"EMAIL": "drop"}).redact("Mail ann@example.org now")
    assert result.text == "Mail  now"


def test_redact_pseudonymize_tags_with_key_id_and_hmac() -> None:
    result = Redactor({"EMAIL": "pseudonymize"}, pseudonymizer=KEY).redact("Mail Ann@Example.org")
    tag = result.text.removeprefix("Mail ")
    assert re.fullmatch(rf"<EMAIL:{KEY.key_id}:[0-9a-f]{{16}}>", tag)
    assert tag == pseudonym_tag(KEY, "EMAIL", "ann@example.org")  # normalised: case-blind


def test_redact_only_listed_entities() -> None:
    result = Redactor({"EMAIL": "replace"}).redact(TEXT)
    assert result.text.startswith("Mail <EMAIL>, card 4111 1111 1111 1111")


def test_redact_every_occurrence_of_a_detected_value() -> None:
    # The second copy is glued to a word, so no detector reports it; it is redacted anyway.
    result = Redactor({"IP_ADDRESS": "replace"}).redact("from 10.0.0.7, see host10.0.0.7")
    assert result.text == "from <IP_ADDRESS>, see host<IP_ADDRESS>"


def test_redact_default_entities_cover_all_builtins_but_national_id() -> None:
    assert set(Redactor().operators) == set(ENTITIES) - {"NATIONAL_ID"}
    assert set(Redactor(countries=["DE"]).operators) == set(ENTITIES)


def test_redact_longest_finding_wins_an_overlap() -> None:
    text = "id 36 574 261 809 today"  # a German tax id, also a valid Italian phone number
    redactor = Redactor({"PHONE": "replace", "NATIONAL_ID": "replace"}, countries=["DE", "IT"])
    assert redactor.redact(text).text == "id <NATIONAL_ID> today"


def test_resolve_overlaps_prefers_longer_then_more_specific() -> None:
    phone = Finding("PHONE", 0, 10, "0123456789")
    card = Finding("CREDIT_CARD", 0, 10, "0123456789")
    email = Finding("EMAIL", 5, 30, "x" * 25)
    assert resolve_overlaps([phone, card]) == [card]
    assert resolve_overlaps([phone, email]) == [email]


def test_summary_has_counts_and_positions_but_no_values() -> None:
    result = Redactor().redact(TEXT)
    summary = result.summary()
    assert summary["counts"] == {"EMAIL": 1, "CREDIT_CARD": 1, "IBAN": 1}
    assert summary["findings"][0] == {"entity": "EMAIL", "start": 5, "end": 20}
    assert "ann@example.org" not in repr(summary)
    assert "ann@example.org" not in repr(result)


def test_redact_value_handles_personal_fields_scanned_text_and_others() -> None:
    redactor = Redactor(
        {"EMAIL": "replace"},
        fields={"email": "pseudonymize", "name": "mask"},
        scan=["note"],
        pseudonymizer=KEY,
    )
    assert redactor.redact_value("email", "Ann@Example.org") == pseudonym_tag(
        KEY, "EMAIL", "ann@example.org"
    )
    assert redactor.redact_value("name", "Ann Lee") == "*** ***"
    assert redactor.redact_value("name", None) is None
    assert redactor.redact_value("note", "write to ann@example.org") == "write to <EMAIL>"
    assert redactor.redact_value("income", 52000) == 52000
    assert redactor.is_personal("email")
    assert not redactor.is_personal("note")


def test_redact_record_returns_a_redacted_copy() -> None:
    redactor = Redactor(fields=["phone"], scan=["note"], pseudonymizer=KEY)
    record: dict[str, object] = {"phone": "+49 30 1234567", "note": "ip 10.1.2.3", "age": 41}
    redacted = redactor.redact_record(record)
    assert redacted["note"] == "ip <IP_ADDRESS>"
    assert str(redacted["phone"]).startswith(f"<PHONE:{KEY.key_id}:")
    assert redacted["age"] == 41
    assert record["phone"] == "+49 30 1234567"  # the caller's record is untouched


class CustomSpec(BaseModel):
    name: str
    pattern: str
    validator: str | None = None


class PiiSection(BaseModel):
    """What the `guard.pii` spec section will look like."""

    fields: list[str] = []
    scan: list[str] = []
    entities: dict[str, Literal["mask", "replace", "drop", "pseudonymize"]] | None = None
    countries: list[str] = []
    model_sees: Literal["raw", "redacted"] = "redacted"
    custom: list[CustomSpec] = []


def test_from_spec_builds_from_a_pydantic_section() -> None:
    section = PiiSection(
        fields=["email"],
        scan=["note"],
        entities={"EMAIL": "mask", "PHONE": "pseudonymize", "EMPLOYEE_ID": "replace"},
        countries=["DE"],
        custom=[CustomSpec(name="EMPLOYEE_ID", pattern=r"EMP-\d{6}")],
    )
    redactor = Redactor.from_spec(section, KEY)
    text = "EMP-004217 called from 030 1234567, mail a@b.de"
    assert redactor.redact_value("note", text) == (
        f"<EMPLOYEE_ID> called from {pseudonym_tag(KEY, 'PHONE', '030 1234567')}, mail *@*.**"
    )


def test_custom_entities_accept_mappings_and_detectors() -> None:
    redactor = Redactor(
        {"EMAIL": "replace"},
        custom=[{"name": "TICKET", "pattern": r"TCK-\d{5}"}],
    )
    assert redactor.redact("TCK-48213 from a@b.de").text == "<TICKET> from <EMAIL>"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"entities": {"PASSPORT": "mask"}}, "guard.pii.entities.PASSPORT"),
        ({"entities": {"EMAIL": "hide"}}, "guard.pii.entities.EMAIL"),
        ({"entities": {"EMAIL": "pseudonymize"}}, "guard.pii.entities.EMAIL"),
        ({"fields": {"email": "blur"}}, "guard.pii.fields.email"),
        ({"countries": ["ZZ"]}, "guard.pii.countries"),
        ({"regions": ["QQ"]}, "guard.pii.regions"),
        ({"custom": [{"name": "EMAIL", "pattern": "x"}]}, "guard.pii.custom[0].name"),
        ({"custom": [{"name": "X", "pattern": "("}]}, "guard.pii.custom[0]"),
        ({"custom": [{"name": "X", "regex": "x"}]}, "guard.pii.custom[0]"),
    ],
)
def test_bad_configuration_names_the_spec_key(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(SpecError) as caught:
        Redactor(**kwargs)  # type: ignore[arg-type]
    assert field in [e.field for e in caught.value.errors]


def test_mask_keeps_last_characters_only_when_enough_are_hidden() -> None:
    assert mask("4111-1111-1111-1111", keep_last=4) == "****-****-****-1111"
    assert mask("12345", keep_last=4) == "*****"


@pytest.mark.parametrize(
    ("entity", "a", "b"),
    [
        ("EMAIL", "Ann@Example.org", "ann@example.org"),
        ("PHONE", "+1 (201) 555-0123", "+12015550123"),
        ("IBAN", "de89 3704 0044 0532 0130 00", "DE89370400440532013000"),
        ("IP_ADDRESS", "2001:0db8:0000::0001", "2001:db8::1"),
    ],
)
def test_normalize_makes_spellings_of_one_value_share_a_pseudonym(
    entity: str, a: str, b: str
) -> None:
    assert normalize(entity, a) == normalize(entity, b)
    assert pseudonym_tag(KEY, entity, a) == pseudonym_tag(KEY, entity, b)


def test_pseudonym_tags_cover_every_known_key() -> None:
    old = Pseudonymizer(b"o" * 32)
    rotated = Pseudonymizer(b"n" * 32, previous=[b"o" * 32])
    tags = pseudonym_tags(rotated, "EMAIL", "ann@example.org")
    assert tags[0] == pseudonym_tag(rotated, "EMAIL", "ann@example.org")
    assert pseudonym_tag(old, "EMAIL", "ann@example.org") == tags[1]
