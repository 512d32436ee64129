"""Invariants of redaction, checked on generated texts (hypothesis)."""

from __future__ import annotations

import string

from hypothesis import given, settings
from hypothesis import strategies as st

from bastion.guard.pii import ENTITIES, OPERATORS, Redactor
from bastion.guard.pseudonym import Pseudonymizer

KEY = Pseudonymizer(b"property-test-key-32-bytes-long!")
VALUES = [
    "ann.lee@example.org",
    "J.Doe+loans@mail.example.co.uk",
    "+49 30 12345678",
    "(201) 555-0123",
    "06 12 34 56 78",
    "4111 1111 1111 1111",
    "3400-000000-00009",
    "DE89 3704 0044 0532 0130 00",
    "GB82WEST12345698765432",
    "536-22-8726",
    "192.168.1.20",
    "2001:db8::1",
    "36 574 261 809",
    "2 95 10 99 126 111 93",
]
WORDS = ["customer", "called", "about", "the", "loan", "please", "update", "card", "IBAN"]
SEPARATORS = [" ", ", ", "; ", ". ", " and ", "\n", " (", ") "]

fragments = st.lists(
    st.one_of(st.sampled_from(VALUES), st.sampled_from(WORDS), st.text(max_size=8)),
    max_size=12,
)
operators = st.fixed_dictionaries({e: st.sampled_from(OPERATORS) for e in ENTITIES})


def _join(parts: list[str], seps: list[str]) -> str:
    out = ""
    for i, part in enumerate(parts):
        out += part + (seps[i % len(seps)] if seps else " ")
    return out


@settings(deadline=None, max_examples=150)
@given(fragments, st.lists(st.sampled_from(SEPARATORS), min_size=1, max_size=4), operators)
def test_redaction_never_leaves_a_detected_raw_value(
    parts: list[str], seps: list[str], ops: dict[str, str]
) -> None:
    redactor = Redactor(ops, countries=["DE", "FR"], regions=["US", "DE", "FR"], pseudonymizer=KEY)
    text = _join(parts, seps)

    result = redactor.redact(text)

    for finding in result.findings:
        assert finding.text not in result.text


@settings(deadline=None, max_examples=150)
@given(st.lists(st.sampled_from(VALUES), min_size=1, max_size=5), operators)
def test_redaction_removes_every_seeded_value(values: list[str], ops: dict[str, str]) -> None:
    redactor = Redactor(ops, countries=["DE", "FR"], regions=["US", "DE", "FR"], pseudonymizer=KEY)
    text = "Note: " + ", then ".join(values) + "."

    redacted = redactor.redact(text).text

    assert not [v for v in values if v in redacted]


@settings(deadline=None)
@given(st.text(alphabet=string.ascii_letters + " ,.;!?'\n-" + "äéßø"))
def test_redaction_of_text_without_pii_is_the_identity(text: str) -> None:
    result = Redactor(countries=["DE", "FR", "IT", "ES", "NL"]).redact(text)
    assert result.text == text
    assert result.findings == ()


@settings(deadline=None)
@given(st.text(), st.binary(min_size=16, max_size=48), st.binary(min_size=16, max_size=48))
def test_pseudonyms_are_stable_per_key_and_differ_across_keys(
    value: str, key_a: bytes, key_b: bytes
) -> None:
    a, a_again, b = Pseudonymizer(key_a), Pseudonymizer(key_a), Pseudonymizer(key_b)
    assert a.pseudonymize(value) == a_again.pseudonymize(value)
    if key_a != key_b:
        assert a.pseudonymize(value) != b.pseudonymize(value)
        assert a.key_id != b.key_id
