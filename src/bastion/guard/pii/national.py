"""National identifiers, per country, validated by python-stdnum.

Each country lists the identifiers stdnum can check (format, date parts, check digits). A
candidate regex finds the usual written forms; only values the validator accepts become
findings, so look-alikes with a wrong check digit are never reported.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from stdnum.at import vnr
from stdnum.be import nn
from stdnum.ch import ssn as ch_ssn
from stdnum.de import idnr
from stdnum.dk import cpr
from stdnum.es import dni, nie
from stdnum.fi import hetu
from stdnum.fr import nir
from stdnum.ie import pps
from stdnum.it import codicefiscale
from stdnum.nl import bsn
from stdnum.no import fodselsnummer
from stdnum.pl import pesel
from stdnum.pt import cc
from stdnum.se import personnummer

from bastion.guard.pii.detectors import NATIONAL_ID, Finding, clear_start

_NOT_BEFORE = r"[\w.+-]"
_AFTER = r"(?![\w]|[.-]\w)"
_CF = "[0-9LMNPQRSTUV]"  # Italian codice fiscale digits may be replaced by these letters


@dataclass(frozen=True)
class NationalIdKind:
    """One identifier of one country: its stdnum module name, written forms and validator."""

    country: str
    kind: str
    pattern: re.Pattern[str]
    is_valid: Callable[[str], bool]


def _kind(
    country: str, kind: str, first: str, rest: str, is_valid: Callable[[str], bool]
) -> NationalIdKind:
    """An identifier whose written forms are `first` (one character class) then `rest`."""
    pattern = re.compile(f"{clear_start(first, _NOT_BEFORE)}(?:{rest}){_AFTER}")
    return NationalIdKind(country, kind, pattern, is_valid)


NATIONAL_IDS: dict[str, tuple[NationalIdKind, ...]] = {
    "AT": (_kind("AT", "at.vnr", r"\d", r"\d{3} ?\d{6}", vnr.is_valid),),
    "BE": (
        _kind("BE", "be.nn", r"\d", r"\d[. ]?\d{2}[. ]?\d{2}[- ]?\d{3}[. ]?\d{2}", nn.is_valid),
    ),
    "CH": (_kind("CH", "ch.ssn", "7", r"56[. ]?\d{4}[. ]?\d{4}[. ]?\d{2}", ch_ssn.is_valid),),
    "DE": (_kind("DE", "de.idnr", r"\d", r"\d ?\d{3} ?\d{3} ?\d{3}", idnr.is_valid),),
    "DK": (_kind("DK", "dk.cpr", r"\d", r"\d{5}-?\d{4}", cpr.is_valid),),
    "ES": (
        _kind("ES", "es.dni", r"\d", r"\d{7}-?[A-Za-z]", dni.is_valid),
        _kind("ES", "es.nie", "[XYZxyz]", r"-?\d{7}-?[A-Za-z]", nie.is_valid),
    ),
    "FI": (_kind("FI", "fi.hetu", r"\d", r"\d{5}[-+A-FU-Y]\d{3}[0-9A-Y]", hetu.is_valid),),
    "FR": (
        _kind(
            "FR",
            "fr.nir",
            "[1-478]",
            r" ?\d{2} ?\d{2} ?(?:\d{2}|2[AB]) ?\d{3} ?\d{3} ?\d{2}",
            nir.is_valid,
        ),
    ),
    "IE": (_kind("IE", "ie.pps", r"\d", r"\d{6}[A-W][A-IW]?", pps.is_valid),),
    "IT": (
        _kind(
            "IT",
            "it.codicefiscale",
            "[A-Z]",
            rf"[A-Z]{{5}}{_CF}{{2}}[A-Z]{_CF}{{2}}[A-Z]{_CF}{{3}}[A-Z]",
            codicefiscale.is_valid,
        ),
    ),
    "NL": (_kind("NL", "nl.bsn", r"\d", r"\d{3}\.\d{2}\.\d{3}|\d{8}", bsn.is_valid),),
    "NO": (_kind("NO", "no.fodselsnummer", r"\d", r"\d{5} ?\d{5}", fodselsnummer.is_valid),),
    "PL": (_kind("PL", "pl.pesel", r"\d", r"\d{10}", pesel.is_valid),),
    "PT": (_kind("PT", "pt.cc", r"\d", r"\d{7} ?\d ?[A-Z]{2}\d", cc.is_valid),),
    "SE": (
        _kind("SE", "se.personnummer", r"\d", r"(?:\d{2})?\d{5}[-+]?\d{4}", personnummer.is_valid),
    ),
}
"""Identifiers per ISO 3166 country code. Countries not listed (e.g. US, whose SSN is the
separate US_SSN entity) contribute no national identifier."""

_DIGIT = re.compile(r"\d")


class NationalIdDetector:
    """National identifiers of the configured `countries` (see `NATIONAL_IDS`), reported as
    the one entity ``NATIONAL_ID``; where two identifiers overlap the longer one is kept."""

    name = NATIONAL_ID

    def __init__(self, countries: Sequence[str]) -> None:
        codes = [c.upper() for c in countries]
        self.kinds = tuple(
            kind for code in dict.fromkeys(codes) for kind in NATIONAL_IDS.get(code, ())
        )
        # One scan finds every place where some identifier's written form starts; only
        # there is each kind's own pattern tried (one scan per kind costs several times more).
        self._any = re.compile("|".join(f"(?:{k.pattern.pattern})" for k in self.kinds) or "(?!)")

    def find(self, text: str) -> list[Finding]:
        if not self.kinds or not _DIGIT.search(text):
            return []
        spans: list[tuple[int, int]] = []
        found = self._any.search(text)
        while found is not None:
            at = found.start()
            for kind in self.kinds:
                m = kind.pattern.match(text, at)
                if m is not None and kind.is_valid(m[0]):
                    spans.append(m.span())
            found = self._any.search(text, at + 1)
        if len(spans) > 1:
            spans = _longest_first(spans)
        return [Finding(NATIONAL_ID, start, end, text[start:end]) for start, end in spans]


def _longest_first(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    kept: list[tuple[int, int]] = []
    for start, end in sorted(set(spans), key=lambda s: (s[0] - s[1], s[0])):
        if all(end <= a or start >= b for a, b in kept):
            kept.append((start, end))
    return sorted(kept)
