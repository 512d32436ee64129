"""Every PII detector passes one contract test; each entity's valid values and look-alikes."""

from __future__ import annotations

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers.phonenumbermatcher import _is_national_prefix_present_if_required

from bastion.guard.pii import (
    CreditCardDetector,
    Detector,
    EmailDetector,
    Finding,
    IbanDetector,
    IpAddressDetector,
    NationalIdDetector,
    PhoneDetector,
    RegexDetector,
    UsSsnDetector,
    load_validator,
)
from bastion.guard.pii.phone import phone_is_valid

# (detector, a value it must find) for the shared contract.
CASES: list[tuple[Detector, str]] = [
    (EmailDetector(), "ann.lee@example.org"),
    (PhoneDetector(["US", "DE"]), "+49 30 12345678"),
    (CreditCardDetector(), "4111 1111 1111 1111"),
    (IbanDetector(), "DE89 3704 0044 0532 0130 00"),
    (UsSsnDetector(), "536-22-8726"),
    (IpAddressDetector(), "192.168.1.20"),
    (NationalIdDetector(["DE", "FR"]), "36 574 261 809"),
    (RegexDetector("EMPLOYEE_ID", r"EMP-\d{6}"), "EMP-004217"),
]
IDS = [detector.name for detector, _ in CASES]
NO_PII = "The loan officer reviewed the file on Tuesday and asked for two more payslips."


@pytest.mark.parametrize(("detector", "value"), CASES, ids=IDS)
def test_detector_contract(detector: Detector, value: str) -> None:
    assert isinstance(detector, Detector)
    text = f"Note: {value}, then {value}. Done"

    found = detector.find(text)

    assert [f.text for f in found] == [value, value]
    assert all(isinstance(f, Finding) and f.entity == detector.name for f in found)
    assert all(text[f.start : f.end] == f.text for f in found)
    assert found[0].end <= found[1].start  # in text order, not overlapping
    assert detector.find(text) == found  # no state carried between calls


@pytest.mark.parametrize(("detector", "value"), CASES, ids=IDS)
def test_detector_finds_nothing_in_text_without_pii(detector: Detector, value: str) -> None:
    assert detector.find("") == []
    assert detector.find(NO_PII) == []


@pytest.mark.parametrize(("detector", "value"), CASES, ids=IDS)
def test_detector_finding_repr_hides_the_value(detector: Detector, value: str) -> None:
    (finding,) = detector.find(value)
    assert value not in repr(finding)
    assert value not in str(finding)


@pytest.mark.parametrize(
    "text",
    ["jane.doe+loans@mail.example.co.uk", "J.Doe@Example.COM", "a_b-c@sub-domain.example.io"],
)
def test_email_valid_addresses_are_found_whole(text: str) -> None:
    assert [f.text for f in EmailDetector().find(f"({text}).")] == [text]


@pytest.mark.parametrize("text", ["logo@2x.png", "support@", "@handle", "a@b", "jane..doe@"])
def test_email_look_alikes_are_not_found(text: str) -> None:
    assert EmailDetector().find(f"see {text} here") == []


@pytest.mark.parametrize(
    ("text", "regions"),
    [
        ("(201) 555-0123", ["US"]),
        ("201.555.0123", ["US"]),
        ("+1 201-555-0123", ["DE"]),  # international form: any region
        ("030 12345678", ["DE"]),
        ("020 7946 0958", ["GB"]),
        ("06 12 34 56 78", ["FR"]),
        ("+33612345678", ["US"]),
    ],
)
def test_phone_valid_numbers_are_found(text: str, regions: list[str]) -> None:
    assert [f.text for f in PhoneDetector(regions).find(f"Call {text} today.")] == [text]


@pytest.mark.parametrize(
    "text",
    [
        "order #2015550123",
        "Order number 2015550123",
        "invoice 2015550123",
        "ORD-2015550123",
        "on 2024-03-15",
        "536-22-8726",
        "IP 192.168.100.200",
        "account NL62 ABNA 7826 0074 44",
        "call 030 12345678",  # a German number, but only US numbers are expected nationally
    ],
)
def test_phone_look_alikes_are_not_found(text: str) -> None:
    assert PhoneDetector(["US"]).find(text) == []


def test_phone_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="regions must be ISO 3166"):
        PhoneDetector(["XX"])


@pytest.mark.parametrize(
    "text",
    ["4111111111111111", "4111-1111-1111-1111", "5500 0000 0000 0004", "3400 000000 00009"],
)
def test_card_valid_numbers_are_found(text: str) -> None:
    assert [f.text for f in CreditCardDetector().find(f"card {text}.")] == [text]


@pytest.mark.parametrize(
    "text",
    [
        "4111 1111 1111 1112",  # Luhn fails
        "9111 1111 1111 1111",  # no scheme starts with 9
        "1234 5678 9012 3456",  # no scheme, Luhn fails
        "4111 1111-1111 1111",  # mixed separators
        "3400 0000 0000 0009",  # Amex prefix at Visa length
        "DE44 4111 1111 1111 1111",  # digits of an account number
    ],
)
def test_card_look_alikes_are_not_found(text: str) -> None:
    assert CreditCardDetector().find(f"number {text} here") == []


@pytest.mark.parametrize(
    "text",
    ["DE89370400440532013000", "GB82 WEST 1234 5698 7654 32", "NL91 ABNA 0417 1643 00"],
)
def test_iban_valid_numbers_are_found(text: str) -> None:
    assert [f.text for f in IbanDetector().find(f"to {text} THANKS")] == [text]


@pytest.mark.parametrize(
    "text", ["DE88 3704 0044 0532 0130 00", "XX89 3704 0044 0532 0130 00", "RF18 5390 0754 7034"]
)
def test_iban_look_alikes_are_not_found(text: str) -> None:
    assert IbanDetector().find(f"to {text}.") == []


def test_iban_shape_memo_agrees_with_stdnum() -> None:
    detector = IbanDetector()
    assert detector.find("DE89 3704 0044 0532 0130 00")  # remembers the DE shape
    assert detector.find("DE89 3704 0044 0532 0130 0") == []  # a shorter one is still refused


@pytest.mark.parametrize("text", ["536-22-8726", "536 22 8726", "078-05-1121"])
def test_ssn_valid_numbers_are_found(text: str) -> None:
    assert [f.text for f in UsSsnDetector().find(f"SSN {text}.")] == [text]


@pytest.mark.parametrize(
    "text",
    [
        "000-12-3456",
        "666-12-3456",
        "900-12-3456",
        "999-12-3456",
        "536-00-8726",
        "536-22-0000",
        "078-05-1120",
        "536-22 8726",
        "1536-22-8726",
    ],
)
def test_ssn_never_issued_numbers_are_not_found(text: str) -> None:
    assert UsSsnDetector().find(f"SSN {text}.") == []


@pytest.mark.parametrize(
    "text", ["10.0.0.1", "255.255.255.255", "2001:db8::1", "fe80::1%eth0", "::ffff:192.0.2.1"]
)
def test_ip_valid_addresses_are_found(text: str) -> None:
    assert [f.text for f in IpAddressDetector().find(f"from {text}.")] == [text]


@pytest.mark.parametrize(
    "text",
    ["999.1.1.1", "256.12.0.1", "1.2.3", "v1.2.3.4", "1.2.3.4.5", "10:30:00", "00:1A:2B:3C:4D:5E"],
)
def test_ip_look_alikes_are_not_found(text: str) -> None:
    assert IpAddressDetector().find(f"at {text} x") == []


@pytest.mark.parametrize(
    ("country", "text"),
    [
        ("DE", "36 574 261 809"),
        ("FR", "2 95 10 99 126 111 93"),
        ("NL", "1112.22.333"),
        ("ES", "54362315-K"),
        ("IT", "RCCMNL83S18D969H"),
        ("PL", "44051401359"),
        ("CH", "756.9217.0769.85"),
    ],
)
def test_national_id_valid_numbers_are_found(country: str, text: str) -> None:
    assert [f.text for f in NationalIdDetector([country]).find(f"id {text}.")] == [text]


@pytest.mark.parametrize(
    ("country", "text"),
    [
        ("DE", "36 574 261 808"),
        ("FR", "2 95 10 99 126 111 94"),
        ("ES", "54362315-Z"),
        ("IT", "RCCMNL83S18D969A"),
        ("US", "36 574 261 809"),  # no national id configured for the US (SSN is separate)
    ],
)
def test_national_id_look_alikes_are_not_found(country: str, text: str) -> None:
    assert NationalIdDetector([country]).find(f"id {text}.") == []


def test_regex_detector_validator_by_path_filters_matches() -> None:
    detector = RegexDetector("ACCOUNT", r"ACC-(?P<value>\d{8})", "stdnum.luhn:is_valid")
    found = detector.find("ACC-12345674 and ACC-12345678")
    assert [f.text for f in found] == ["12345674"]


def test_regex_detector_validator_raising_value_error_rejects() -> None:
    detector = RegexDetector("TAX_ID", r"\d{11}", "stdnum.de.idnr:validate")
    assert [f.text for f in detector.find("36574261809 36574261808")] == ["36574261809"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "lower", "pattern": "x"}, "upper-case entity name"),
        ({"name": "X", "pattern": "("}, "not a valid regular expression"),
        ({"name": "X", "pattern": "a*"}, "must not match the empty string"),
        ({"name": "X", "pattern": "a", "validator": "nomodule"}, "module:function"),
        ({"name": "X", "pattern": "a", "validator": "no_such_mod:f"}, "cannot be imported"),
        ({"name": "X", "pattern": "a", "validator": "stdnum.luhn:nothing"}, "cannot be imported"),
    ],
)
def test_regex_detector_bad_definitions_are_refused(kwargs: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RegexDetector(**kwargs)


def test_load_validator_wraps_result_as_bool() -> None:
    assert load_validator("stdnum.luhn:is_valid")("4111111111111111") is True


def _valid_by_parse(candidate: str, region: str) -> bool:
    try:
        number = phonenumbers.parse(candidate, region, keep_raw_input=True)
    except phonenumbers.NumberParseException:
        return False
    return phonenumbers.is_valid_number(number) and _is_national_prefix_present_if_required(number)


@settings(deadline=None, max_examples=300)
@given(
    st.text(alphabet="0123456789", min_size=6, max_size=15),
    st.sampled_from(["", "0", "00", "1", "+", "+1 ", "+49 ", "0049 ", "011 44 "]),
    st.sampled_from([" ", "-", ".", ""]),
    st.sampled_from(["US", "GB", "DE", "FR", "IT", "ES", "NL", "CA", "BR", "IN"]),
)
def test_phone_fast_parse_agrees_with_phonenumbers_parse(
    body: str, lead: str, sep: str, region: str
) -> None:
    candidate = lead + sep.join([body[:3], body[3:6], body[6:]]).strip(sep)
    digits = candidate.translate(str.maketrans("", "", " .-+"))
    assert phone_is_valid(candidate, digits, [region]) == _valid_by_parse(candidate, region)


@pytest.mark.parametrize(
    ("candidate", "region"),
    [
        ("030 12345678", "DE"),
        ("0171 2345678", "DE"),
        ("020 7946 0958", "GB"),
        ("312 345 6789", "IT"),
    ],
)
def test_phone_fast_parse_agrees_on_real_numbers(candidate: str, region: str) -> None:
    digits = candidate.replace(" ", "")
    assert phone_is_valid(candidate, digits, [region]) is _valid_by_parse(candidate, region) is True
