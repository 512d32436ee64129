"""Phone numbers: candidates from one regex, verified by phonenumbers as ``Leniency.VALID``."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import phonenumbers
from phonenumbers.phonenumbermatcher import _is_national_prefix_present_if_required
from phonenumbers.phonenumberutil import (
    ValidationResult,
    _maybe_extract_country_code,
    _maybe_strip_national_prefix_carrier_code,
    _set_italian_leading_zeros_for_phone_number,
    _test_number_length,
)

from bastion.guard.pii.detectors import (
    ACCOUNT_HEAD,
    PHONE,
    Finding,
    clear_start,
    spans_to_findings,
)

# A run of digits and phone punctuation, starting with +, ( or a digit, not glued to a word,
# an e-mail, an IP-like dotted number or an id written as "#123" / "ORD-123".
_PHONE_CANDIDATE = re.compile(
    clear_start(r"[+(\d]", r"[\w#+@.-]") + r"(?:(?<=\d)|(?=\d))[\d ().\-/]{5,22}\d(?![\w@])"
)
# Words that make the number after them an id: "order 2125550187", "invoice no. 0301234567".
_ID_LABELS = frozenset(
    re.findall(
        r"\w+",
        "order invoice inv ref reference ticket case tracking account acct "
        "loan application contract policy customer po id",
    )
)
_NUMBER_WORDS = frozenset({"number", "no", "nr", "num"})
_NON_DIGITS = str.maketrans("", "", " ().-/+")
_LABEL_PUNCTUATION = str.maketrans("#:()[],;", "        ")
# Dotted quads (IPs, versions), dates and numbers written like a US SSN are not phone numbers.
_NOT_PHONE_SHAPE = re.compile(
    r"[(]?(?:\d{1,3}(?:\.\d{1,3}){3}|\d{3}([- ])\d{2}\1\d{4}"
    r"|\d{1,2}([./-])\d{1,2}\2\d{4}|\d{4}([./-])\d{1,2}\3\d{1,2})[)]?"
)


def _after_id_label(text: str, start: int) -> bool:
    """Whether the digits at `start` follow an id label or continue an account code."""
    before = text[max(0, start - 32) : start]
    words = before.lower().translate(_LABEL_PUNCTUATION).split()
    if not words:
        return False
    last = words[-1].rstrip(".")
    if last in _NUMBER_WORDS and len(words) > 1:
        last = words[-2].rstrip(".")
    if last in _ID_LABELS:
        return True
    tail = before.rstrip()[-1:]
    return (tail.isdigit() or tail.isupper()) and ACCOUNT_HEAD.search(before) is not None


class PhoneDetector:
    """Phone numbers, validated by phonenumbers with the checks of ``Leniency.VALID``.

    Numbers in international form (``+49 …``, ``0049 …``) are found for every country;
    national forms (``030 1234567``) for the default `regions` (ISO 3166 codes, tried in
    order). Digit runs right after an id label (``order``, ``invoice``, ``ref``, ``#`` …) or
    inside an account code, and dotted quads, dates and SSN-shaped numbers are not phone
    numbers; neither are digits glued to letters.

    ``PhoneNumberMatcher`` costs tens of µs per text and region, so candidates come from one
    regex; each is checked against every region's national number pattern (phonenumbers
    metadata) and only a fitting one is parsed (`parse_digits`) and verified as
    ``Leniency.VALID`` does: a valid number, with the national prefix where the numbering
    plan requires it. A test holds this to the matcher's own parse-and-verify verdicts.
    """

    name = PHONE

    def __init__(self, regions: Sequence[str] = ("US", "GB", "DE", "FR")) -> None:
        unknown = [r for r in regions if r.upper() not in phonenumbers.SUPPORTED_REGIONS]
        if unknown:
            raise ValueError(f"regions must be ISO 3166 country codes, got {unknown}")
        self.regions = tuple(dict.fromkeys(r.upper() for r in regions)) or ("US",)
        self._plans = [_national_plan(region) for region in self.regions]

    def find(self, text: str, claimed: Sequence[Finding] = ()) -> list[Finding]:
        """Phone numbers in `text`; candidates lying inside a `claimed` finding (a longer or
        more specific entity found first) are skipped, as they could never win against it."""
        spans: list[tuple[int, int]] = []
        for m in _PHONE_CANDIDATE.finditer(text):
            if claimed and any(c.start <= m.start() and m.end() <= c.end for c in claimed):
                continue
            digits = m[0].translate(_NON_DIGITS)
            if not 7 <= len(digits) <= 17 or _NOT_PHONE_SHAPE.fullmatch(m[0]):
                continue
            if _after_id_label(text, m.start()):
                continue
            start, end = m.span()
            if text[start] == "(" and ")" not in m[0]:
                start += 1  # "(212-555-0187": the bracket belongs to the sentence
            if text[start] == "+":  # the country code is written: any region parses it
                regions: Iterable[str] = self.regions[:1]
            elif digits.startswith("00"):  # an international prefix, of some regions only
                regions = self.regions
            else:
                regions = [region for region, fits in self._plans if fits(digits)]
            if phone_is_valid(text[start:end], digits, regions):
                spans.append((start, end))
        return spans_to_findings(PHONE, text, spans)


def _national_plan(region: str) -> tuple[str, Callable[[str], object]]:
    """`region` and a test whether a digit string could be one of its national numbers
    (with or without the national prefix), from the phonenumbers metadata."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    desc = metadata.general_desc if metadata is not None else None
    if metadata is None or desc is None or not desc.national_number_pattern:
        return region, lambda digits: True
    prefix = re.escape(metadata.national_prefix or "")
    pattern = re.compile(f"(?:{prefix})?(?:{desc.national_number_pattern})")
    return region, pattern.fullmatch


def phone_is_valid(candidate: str, digits: str, regions: Iterable[str]) -> bool:
    """Leniency.VALID's checks on one candidate: a valid number for its country, with the
    national prefix where that country's numbering plan requires it."""
    for region in regions:
        try:
            parsed = parse_digits(candidate, digits, region)
        except phonenumbers.NumberParseException:
            continue
        if parsed is None or not phonenumbers.is_valid_number(parsed.number):
            continue
        # A stripped national prefix is a present one; only otherwise ask the numbering plan.
        if parsed.prefix_stripped or _is_national_prefix_present_if_required(parsed.number):
            return True
    return False


@dataclass(frozen=True)
class ParsedNumber:
    number: phonenumbers.PhoneNumber
    prefix_stripped: bool


def parse_digits(candidate: str, digits: str, region: str) -> ParsedNumber | None:
    """``phonenumbers.parse(candidate, region, keep_raw_input=True)``, for a `candidate` made
    of `digits` and separators only, at a fraction of the cost: parse's handling of free
    text (letters, extensions, phone-context) is skipped and its steps for a nationally
    written number are taken directly. Numbers written with ``+``, an international prefix
    or the country code go through ``parse`` itself. Raises NumberParseException as parse."""
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or candidate.startswith("+"):
        return ParsedNumber(phonenumbers.parse(candidate, region, keep_raw_input=True), False)
    number = phonenumbers.PhoneNumber(raw_input=candidate)
    country_code, _ = _maybe_extract_country_code(digits, metadata, True, number)
    if country_code:
        return ParsedNumber(phonenumbers.parse(candidate, region, keep_raw_input=True), False)
    number.country_code = metadata.country_code
    national = digits
    stripped = False
    _, potential, could_strip = _maybe_strip_national_prefix_carrier_code(national, metadata)
    if _test_number_length(potential, metadata) not in _UNUSABLE_LENGTHS:
        national, stripped = potential, could_strip
    if not 2 <= len(national) <= 17:
        return None
    _set_italian_leading_zeros_for_phone_number(national, number)
    number.national_number = int(national)
    return ParsedNumber(number, stripped)


_UNUSABLE_LENGTHS = (
    ValidationResult.TOO_SHORT,
    ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    ValidationResult.INVALID_LENGTH,
)
