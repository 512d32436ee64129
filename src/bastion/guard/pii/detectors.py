"""PII detectors: one contract, one class per entity type.

Every detector has a `name` (the entity type it reports, e.g. ``EMAIL``) and
``find(text) -> list[Finding]``, returning non-overlapping findings in text order. Each one
finds candidates with one compiled regex (or a cheap ``in`` test first) and only then runs
the expensive check (checksum, ``ipaddress``, phonenumbers), so text without PII costs a
few regex scans. Phone numbers live in `phone`, national ids in `national`, user-defined
detectors in `custom`.

Findings hold the raw value (`Finding.text`) so an operator can transform it, but it never
appears in ``repr`` or ``str``: log `RedactionResult.summary()` instead.
"""

from __future__ import annotations

import functools
import ipaddress
import re
import string
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol, runtime_checkable

import stdnum
from stdnum import iban as stdnum_iban
from stdnum import luhn

EMAIL = "EMAIL"
PHONE = "PHONE"
CREDIT_CARD = "CREDIT_CARD"
IBAN = "IBAN"
US_SSN = "US_SSN"
IP_ADDRESS = "IP_ADDRESS"
NATIONAL_ID = "NATIONAL_ID"

Validator = Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class Finding:
    """One detected value: its entity type and its `[start, end)` span in the scanned text.

    `text` is the raw value; it is kept out of ``repr`` so a logged finding leaks nothing.
    """

    entity: str
    start: int
    end: int
    text: str = field(repr=False)


@runtime_checkable
class Detector(Protocol):
    """What every detector offers: the entity type it reports and a ``find`` method."""

    @property
    def name(self) -> str: ...

    def find(self, text: str) -> list[Finding]: ...


def clear_start(first: str, before: str) -> str:
    """Regex for one `first` character (a class) not preceded by a `before` character.

    The look-behind sits *after* the first character so the regex engine keeps its fast
    skip to positions where `first` occurs; a leading look-behind turns that off and makes
    every scan about twice as slow.
    """
    return f"{first}(?<!{before}{first})"


def spans_to_findings(entity: str, text: str, spans: Iterable[tuple[int, int]]) -> list[Finding]:
    """Findings of `entity` for `spans` of `text`."""
    return [Finding(entity, start, end, text[start:end]) for start, end in spans]


# --- e-mail -----------------------------------------------------------------------------

# Matched outward from each "@": the local part backwards, the domain forwards.
_LOCAL_BEFORE_AT = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_DOMAIN_AFTER_AT = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+([A-Za-z]{2,24})(?![A-Za-z0-9-])"
)
# Names like icon@2x.png or scan@home.pdf are file names, not addresses.
_FILE_SUFFIXES = frozenset(
    re.findall(
        r"\w+",
        "png jpg jpeg gif svg webp bmp pdf txt csv json xml zip "
        "gz tar doc docx xls xlsx ppt pptx mp4 mov log",
    )
)


class EmailDetector:
    """E-mail addresses: RFC 5322 dot-atom local part, DNS host names, an alphabetic TLD.

    Quoted local parts and IP-literal domains are not matched; trailing punctuation is never
    part of the address, and names ending in a file extension (``logo@2x.png``) are skipped.
    """

    name = EMAIL

    def find(self, text: str) -> list[Finding]:
        spans: list[tuple[int, int]] = []
        at = text.find("@")
        while at > 0:
            local = _LOCAL_BEFORE_AT.search(text, max(0, at - 64), at)
            domain = _DOMAIN_AFTER_AT.match(text, at + 1) if local else None
            if local and domain and domain[1].lower() not in _FILE_SUFFIXES:
                # A dot-atom: no leading dot, no "..", no dot right before the "@".
                name = local[0].rsplit("..", 1)[-1].lstrip(".")
                if name and not name.endswith("."):
                    spans.append((at - len(name), domain.end()))
            at = text.find("@", at + 1)
        return spans_to_findings(EMAIL, text, spans)


# --- payment cards ----------------------------------------------------------------------

# 13-19 digits, in groups of 4 (4-4-4-1..7) or Amex/Diners style (4-6-4/5), one separator.
_CARD = re.compile(
    clear_start(r"\d", r"[\w-]")
    + r"\d{3}(?:([ -]?)\d{4}\1\d{4}\1\d{1,7}|([ -]?)\d{6}\2\d{4,5})(?![\w]|-\d)"
)


def _plausible_iin(digits: str) -> bool:
    """Whether the number starts like a card a scheme issues, at a length it issues."""
    n, d1, d2, d4 = len(digits), digits[0], int(digits[:2]), int(digits[:4])
    if d1 == "4":  # Visa
        return n in (13, 16, 19)
    if 51 <= d2 <= 55 or 2221 <= d4 <= 2720:  # Mastercard
        return n == 16
    if d2 in (34, 37):  # American Express
        return n == 15
    if d2 in (36, 38, 39) or 300 <= int(digits[:3]) <= 305:  # Diners Club
        return 14 <= n <= 19
    if 3528 <= d4 <= 3589:  # JCB
        return 16 <= n <= 19
    if d1 == "6" or d2 in (50, 56, 57, 58):  # Discover, UnionPay, Maestro
        return 12 <= n <= 19
    return False


ACCOUNT_HEAD = re.compile(r"\b[A-Z]{2}\d{2}(?:[ -]?[A-Z0-9]{4})*[ -]?$")
"""The head of an account-like code (``NL62 ABNA ``): digits right after it continue the code."""


class CreditCardDetector:
    """Payment card numbers: 13-19 digits (spaces or dashes between groups), a scheme prefix
    (Visa, Mastercard, Amex, Diners, JCB, Discover/UnionPay/Maestro) and a valid Luhn digit."""

    name = CREDIT_CARD

    def find(self, text: str) -> list[Finding]:
        spans = []
        for m in _CARD.finditer(text):
            digits = m[0].replace(" ", "").replace("-", "")
            if not (_plausible_iin(digits) and luhn.is_valid(digits)):
                continue
            if not ACCOUNT_HEAD.search(text, max(0, m.start() - 40), m.start()):
                spans.append(m.span())
        return spans_to_findings(CREDIT_CARD, text, spans)


# --- IBAN -------------------------------------------------------------------------------

_IBAN = re.compile(
    clear_start("[A-Z]", "[A-Za-z0-9]")
    + r"[A-Z]\d{2}(?:[ -]?[A-Z0-9]{4}){2,7}(?:[ -]?[A-Z0-9]{1,3})?(?![A-Za-z0-9])"
)
_IBAN_GROUP_END = re.compile(r"[ -]?[A-Z0-9]{1,4}$")


_LETTER_VALUES = str.maketrans({c: str(i) for i, c in enumerate(string.ascii_uppercase, 10)})


def _mod97(candidate: str) -> bool:
    """The ISO 7064 MOD 97-10 check alone: cheap enough to run before stdnum's full one."""
    compact = candidate.replace(" ", "").replace("-", "")
    return int((compact[4:] + compact[:4]).translate(_LETTER_VALUES)) % 97 == 1


class IbanDetector:
    """IBANs with a valid country format and ISO 7064 check digits (python-stdnum), compact or
    printed in groups of four; a trailing word in capitals is trimmed off if it was caught.

    Past the checksum, stdnum's verdict depends only on the country and the BBAN's shape
    (which positions hold digits or letters), except for countries with a national check
    (ES, BE, NO …); so the verdict is remembered per shape, and stdnum's costly country
    lookup runs once per shape instead of once per IBAN.
    """

    name = IBAN

    def __init__(self) -> None:
        self._shapes: dict[str, bool] = {}

    def find(self, text: str) -> list[Finding]:
        spans = []
        for m in _IBAN.finditer(text):
            candidate = m[0]
            # A capitalised word after the IBAN ("… 00 THANKS") can join the match: trim
            # group by group until the checksum holds or the rest is too short.
            while len(candidate) >= 15:
                if _mod97(candidate) and self._valid(candidate):
                    spans.append((m.start(), m.start() + len(candidate)))
                    break
                candidate = _IBAN_GROUP_END.sub("", candidate)
        return spans_to_findings(IBAN, text, spans)

    def _valid(self, candidate: str) -> bool:
        compact = candidate.replace(" ", "").replace("-", "")
        if compact[:2] in _iban_national_check():
            return stdnum_iban.is_valid(compact)
        shape = compact[:2] + compact[4:].translate(_SHAPE)
        verdict = self._shapes.get(shape)
        if verdict is None:
            verdict = stdnum_iban.is_valid(compact)
            if len(self._shapes) < 4096:
                self._shapes[shape] = verdict
        return verdict


_SHAPE = str.maketrans(string.digits + string.ascii_uppercase, "n" * 10 + "a" * 26)


@functools.cache
def _iban_national_check() -> frozenset[str]:
    """Countries whose IBANs stdnum also checks with a national rule (``stdnum/<cc>/iban.py``)."""
    root = Path(stdnum.__file__).parent
    return frozenset(path.parent.name.upper() for path in root.glob("*/iban.py"))


# --- US social security numbers ---------------------------------------------------------

_SSN = re.compile("(" + clear_start(r"\d", r"[\w-]") + r"\d\d)([- ])(\d{2})\2(\d{4})(?![\w]|-\d)")
_SSN_NEVER_ISSUED = frozenset({"078051120", "219099999"})  # published sample numbers


class UsSsnDetector:
    """US social security numbers written ``AAA-GG-SSSS`` (or with spaces), excluding numbers
    never issued: area 000, 666 or 900-999, group 00, serial 0000, published samples."""

    name = US_SSN

    def find(self, text: str) -> list[Finding]:
        spans = []
        for m in _SSN.finditer(text):
            area, group, serial = m[1], m[3], m[4]
            if (
                area == "000"
                or area == "666"
                or area[0] == "9"
                or group == "00"
                or serial == "0000"
                or area + group + serial in _SSN_NEVER_ISSUED
            ):
                continue
            spans.append(m.span())
        return spans_to_findings(US_SSN, text, spans)


# --- IP addresses -----------------------------------------------------------------------

_IPV4 = re.compile(clear_start(r"\d", r"[\w.]") + r"\d{0,2}(?:\.\d{1,3}){3}(?![\w]|\.\d)")
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?"
    r"(?:%[0-9A-Za-z]+)?(?![\w:]|\.\d)"
)


class IpAddressDetector:
    """IPv4 (dotted quad) and IPv6 (any textual form, zone ids included) addresses; every
    candidate is validated by the standard library's `ipaddress` (so ``999.1.1.1`` is not)."""

    name = IP_ADDRESS

    def find(self, text: str) -> list[Finding]:
        spans: list[tuple[int, int]] = []
        if "." in text:
            for m in _IPV4.finditer(text):
                try:
                    ipaddress.IPv4Address(m[0])
                except ValueError:
                    continue
                spans.append(m.span())
        if "::" in text or text.count(":") >= 7:
            v6: list[tuple[int, int]] = []
            for m in _IPV6.finditer(text):
                value = m[0].rstrip(":") if not m[0].endswith("::") else m[0]
                try:
                    ipaddress.IPv6Address(value)
                except ValueError:
                    continue
                if sum(c.isalnum() for c in value) >= 2:
                    v6.append((m.start(), m.start() + len(value)))
            # An IPv4 tail of an IPv6 address (::ffff:192.0.2.1) is part of it.
            spans = [s for s in spans if not any(a <= s[0] and s[1] <= b for a, b in v6)]
            spans = sorted(spans + v6)
        return spans_to_findings(IP_ADDRESS, text, spans)
