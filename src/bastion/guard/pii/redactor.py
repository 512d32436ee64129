"""`Redactor`: the configured set of detectors and operators one deployment applies.

Built from the ``guard.pii`` spec section (`Redactor.from_spec`) or directly from Python.
It validates its configuration once, raising `SpecError` naming every bad key, and is then
safe to share between threads (it holds no mutable state).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Any, Protocol, TypedDict

import phonenumbers

from bastion.errors import FieldError, SpecError
from bastion.guard.pii.custom import RegexDetector
from bastion.guard.pii.detectors import (
    CREDIT_CARD,
    EMAIL,
    IBAN,
    IP_ADDRESS,
    NATIONAL_ID,
    PHONE,
    US_SSN,
    CreditCardDetector,
    Detector,
    EmailDetector,
    Finding,
    IbanDetector,
    IpAddressDetector,
    UsSsnDetector,
)
from bastion.guard.pii.national import NationalIdDetector
from bastion.guard.pii.operators import OPERATORS, OperatorFunction, make_operator
from bastion.guard.pii.phone import PhoneDetector
from bastion.guard.pseudonym import Pseudonymizer

ENTITIES = (EMAIL, PHONE, CREDIT_CARD, IBAN, US_SSN, IP_ADDRESS, NATIONAL_ID)
DEFAULT_REGIONS = ("US", "GB", "DE", "FR")
SPEC_PATH = "guard.pii"

# Which finding wins an overlap of equal length: checksum-validated entities first.
_PRIORITY = {IBAN: 0, CREDIT_CARD: 1, NATIONAL_ID: 2, US_SSN: 3, EMAIL: 5, IP_ADDRESS: 6, PHONE: 7}
_CUSTOM_PRIORITY = 4
_NEEDS_DIGITS = frozenset({PHONE, CREDIT_CARD, IBAN, US_SSN, NATIONAL_ID})
_DIGIT = re.compile(r"\d")


class CustomEntity(Protocol):
    """A user-defined entity as the spec declares it (``custom: [{name, pattern, validator}]``)."""

    @property
    def name(self) -> str: ...
    @property
    def pattern(self) -> str: ...
    @property
    def validator(self) -> str | Callable[[str], bool] | None: ...


class PiiSpec(Protocol):
    """The shape of the ``guard.pii`` spec section; a pydantic model with these fields fits."""

    @property
    def fields(self) -> Sequence[str] | Mapping[str, str]: ...
    @property
    def scan(self) -> Sequence[str]: ...
    @property
    def entities(self) -> Mapping[str, str] | None: ...
    @property
    def countries(self) -> Sequence[str]: ...
    @property
    def custom(self) -> Sequence[CustomEntity]: ...


class FindingSpan(TypedDict):
    entity: str
    start: int
    end: int


class PiiSummary(TypedDict):
    """What may be logged or recorded about findings: entity counts and positions only."""

    counts: dict[str, int]
    findings: list[FindingSpan]


def summarize(findings: Sequence[Finding]) -> PiiSummary:
    """Entity counts and spans of `findings`, without any raw value."""
    return {
        "counts": dict(Counter(f.entity for f in findings)),
        "findings": [{"entity": f.entity, "start": f.start, "end": f.end} for f in findings],
    }


@dataclass(frozen=True)
class RedactionResult:
    """The redacted `text` and the `findings` (positions in the original text) behind it.

    `findings` hold raw values for in-process use only; log or store `summary()`.
    """

    text: str
    findings: tuple[Finding, ...]

    def summary(self) -> PiiSummary:
        return summarize(self.findings)


def resolve_overlaps(findings: Sequence[Finding]) -> list[Finding]:
    """Keep non-overlapping findings, longest first, then the more specific entity
    (IBAN, card, national id, SSN, custom, e-mail, IP, phone); returned in text order."""
    by_start = sorted(findings, key=lambda f: f.start)
    if all(a.end <= b.start for a, b in pairwise(by_start)):
        return by_start
    ordered = sorted(
        findings,
        key=lambda f: (f.start - f.end, _PRIORITY.get(f.entity, _CUSTOM_PRIORITY), f.start),
    )
    kept: list[Finding] = []
    for f in ordered:
        if all(f.end <= k.start or f.start >= k.end for k in kept):
            kept.append(f)
    kept.sort(key=lambda f: f.start)
    return kept


class Redactor:
    """Find personal data in text and apply each entity's operator to it.

    Parameters
    ----------
    entities
        Entity type -> operator (``mask``, ``replace``, ``drop``, ``pseudonymize``). Only the
        entities listed are detected; ``None`` detects every built-in entity (NATIONAL_ID
        only with `countries`) with ``replace``. Custom entities not listed get ``replace``.
    fields
        Structured fields that are personal data: names (handled by `field_operator`) or
        name -> operator. `redact_value` applies the operator to the whole value.
    scan
        Free-text fields whose values `redact_value` scans with the detectors.
    countries
        ISO 3166 codes: national identifiers to detect and, unless `regions` is given, the
        regions whose national phone formats are recognised (default US, GB, DE, FR).
    custom
        User-defined entities: objects or mappings with ``name``, ``pattern`` and optional
        ``validator`` (``module:function`` or a callable), or ready `Detector` instances.
    pseudonymizer
        Keys for ``pseudonymize``; required if any operator is ``pseudonymize``.
    """

    def __init__(
        self,
        entities: Mapping[str, str] | None = None,
        *,
        fields: Sequence[str] | Mapping[str, str] = (),
        scan: Sequence[str] = (),
        countries: Sequence[str] = (),
        regions: Sequence[str] | None = None,
        custom: Sequence[CustomEntity | Mapping[str, Any] | Detector] = (),
        pseudonymizer: Pseudonymizer | None = None,
        field_operator: str = "pseudonymize",
    ) -> None:
        errors: list[FieldError] = []
        countries = [c.upper() for c in countries]
        bad = [c for c in countries if c not in phonenumbers.SUPPORTED_REGIONS]
        if bad:
            errors.append(_error("countries", f"unknown country codes {bad}", "ISO 3166 codes"))
        region_list = [r.upper() for r in regions] if regions is not None else countries
        bad = [r for r in region_list if r not in phonenumbers.SUPPORTED_REGIONS]
        if bad and regions is not None:
            errors.append(_error("regions", f"unknown region codes {bad}", "ISO 3166 codes"))
        region_list = [r for r in region_list if r in phonenumbers.SUPPORTED_REGIONS]

        detectors: dict[str, Detector] = {}
        for i, item in enumerate(custom):
            try:
                detector = _custom_detector(item)
            except (ValueError, TypeError) as exc:
                errors.append(_error(f"custom[{i}]", str(exc)))
                continue
            if detector.name in ENTITIES or detector.name in detectors:
                errors.append(_error(f"custom[{i}].name", f"{detector.name} is already defined"))
            detectors[detector.name] = detector

        if entities is None:
            entities = {e: "replace" for e in ENTITIES if e != NATIONAL_ID or countries}
        operators: dict[str, str] = {name: "replace" for name in detectors}
        for entity, operator in entities.items():
            if entity not in ENTITIES and entity not in detectors:
                known = ", ".join([*ENTITIES, *detectors])
                errors.append(_error(f"entities.{entity}", "unknown entity", known))
            else:
                operators[entity] = operator
        builtin: dict[str, Callable[[], Detector]] = {
            EMAIL: EmailDetector,
            PHONE: lambda: PhoneDetector(region_list or DEFAULT_REGIONS),
            CREDIT_CARD: CreditCardDetector,
            IBAN: IbanDetector,
            US_SSN: UsSsnDetector,
            IP_ADDRESS: IpAddressDetector,
            NATIONAL_ID: lambda: NationalIdDetector(countries),
        }
        for entity in ENTITIES:
            if entity in operators:
                detectors[entity] = builtin[entity]()

        field_operators = (
            dict(fields) if isinstance(fields, Mapping) else dict.fromkeys(fields, field_operator)
        )
        self._apply: dict[str, OperatorFunction] = {}
        self._field_apply: dict[str, OperatorFunction] = {}
        for key, table, target in [
            ("entities", operators, self._apply),
            ("fields", field_operators, self._field_apply),
        ]:
            for name, operator in table.items():
                tag = name if key == "entities" else _field_tag(name)
                try:
                    target[name] = make_operator(operator, tag, pseudonymizer)
                except ValueError as exc:
                    errors.append(_error(f"{key}.{name}", str(exc), ", ".join(OPERATORS)))
        if errors:
            raise SpecError(
                f"invalid {SPEC_PATH} section: {errors[0].field}: {errors[0].message}", errors
            )

        # Built-ins run in priority order, custom detectors after them.
        self.detectors: tuple[Detector, ...] = tuple(
            sorted(detectors.values(), key=lambda d: _PRIORITY.get(d.name, len(_PRIORITY)))
        )
        self._runs = [(d, d.name in _NEEDS_DIGITS) for d in self.detectors]
        self.operators: dict[str, str] = operators
        self.fields: dict[str, str] = field_operators
        self.scan: frozenset[str] = frozenset(scan)
        self.countries = tuple(countries)

    @classmethod
    def from_spec(cls, spec: PiiSpec, pseudonymizer: Pseudonymizer | None = None) -> Redactor:
        """Build from the ``guard.pii`` spec section (any object with its fields)."""
        return cls(
            spec.entities,
            fields=spec.fields,
            scan=spec.scan,
            countries=spec.countries,
            custom=spec.custom,
            pseudonymizer=pseudonymizer,
        )

    def __repr__(self) -> str:
        return f"Redactor(entities={self.operators!r}, fields={self.fields!r}, scan={sorted(self.scan)!r})"

    def find(self, text: str) -> list[Finding]:
        """Every detected value in `text`, overlaps resolved, in text order."""
        has_digit = _DIGIT.search(text) is not None
        found: list[Finding] = []
        for detector, needs_digits in self._runs:
            if needs_digits and not has_digit:
                continue
            if isinstance(detector, PhoneDetector):
                found.extend(detector.find(text, found))
            else:
                found.extend(detector.find(text))
        return resolve_overlaps(found) if len(found) > 1 else found

    def redact(self, text: str) -> RedactionResult:
        """Apply each finding's operator, right to left. Every other occurrence of a detected
        value is treated the same way, so no detected raw value survives in the output."""
        findings = self.find(text)
        if not findings:
            return RedactionResult(text, ())
        findings = _every_occurrence(text, findings)
        out = text
        for f in reversed(findings):
            out = out[: f.start] + self._apply[f.entity](f.text) + out[f.end :]
        # Dropping a value can join its neighbours into a copy of a detected value.
        for value in {f.text for f in findings}:
            while value in out:
                out = out.replace(value, "")
        return RedactionResult(out, tuple(findings))

    def is_personal(self, field: str) -> bool:
        return field in self.fields

    def redact_value(self, field: str, value: object) -> object:
        """The value of `field` as stores may see it: a personal-data field's whole value gets
        its operator (``None`` stays ``None``), a scanned text field is redacted, any other
        value is returned unchanged."""
        apply = self._field_apply.get(field)
        if apply is not None:
            return None if value is None else apply(str(value))
        if field in self.scan and isinstance(value, str):
            return self.redact(value).text
        return value

    def redact_record(self, record: Mapping[str, object]) -> dict[str, object]:
        """A copy of `record` with `redact_value` applied to every field."""
        return {field: self.redact_value(field, value) for field, value in record.items()}


def _every_occurrence(text: str, findings: list[Finding]) -> list[Finding]:
    extra: list[Finding] = []
    for f in {f.text: f for f in findings}.values():
        at = text.find(f.text)
        while at >= 0:
            end = at + len(f.text)
            if all(end <= g.start or at >= g.end for g in (*findings, *extra)):
                extra.append(Finding(f.entity, at, end, f.text))
            at = text.find(f.text, at + 1)
    if not extra:
        return findings
    return sorted([*findings, *extra], key=lambda f: f.start)


def _custom_detector(item: CustomEntity | Mapping[str, Any] | Detector) -> Detector:
    if isinstance(item, Mapping):
        unknown = set(item) - {"name", "pattern", "validator"}
        if unknown:
            raise ValueError(
                f"custom entity keys must be name, pattern, validator; got {sorted(unknown)}"
            )
        return RegexDetector(item["name"], item["pattern"], item.get("validator"))
    if isinstance(item, Detector):
        return item
    return RegexDetector(item.name, item.pattern, item.validator)


def _field_tag(field: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", field.upper()).strip("_") or "FIELD"


def _error(key: str, message: str, expected: str | None = None) -> FieldError:
    return FieldError(field=f"{SPEC_PATH}.{key}", message=message, expected=expected)
