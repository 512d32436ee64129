"""The ``guard`` section of a deployment spec: contract, OOD and personal-data policies.

Configuration only (pydantic models, no fitted state), so `bastion.spec` can use them
without importing the guard machinery: `contract.InputContract`, `ood.OODProfile` and
`pii.Redactor` are built from these sections once per deployment in ``serving/``.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import phonenumbers
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from bastion.guard.pii.detectors import (
    CREDIT_CARD,
    EMAIL,
    IBAN,
    IP_ADDRESS,
    NATIONAL_ID,
    PHONE,
    US_SSN,
)
from bastion.guard.pii.operators import Operator

Action = Literal["reject", "flag"]
Rule = Literal["required", "type", "range", "category", "text_length", "unknown_field"]
#: the rules whose action the policy chooses (``unknown_field`` always rejects)
POLICY_RULES: tuple[Rule, ...] = ("required", "type", "range", "category", "text_length")

BUILTIN_ENTITIES = (EMAIL, PHONE, CREDIT_CARD, IBAN, US_SSN, IP_ADDRESS, NATIONAL_ID)
_ENTITY_NAME = re.compile(r"^[A-Z][A-Z0-9_]{0,63}$")
_VALIDATOR = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


class ContractPolicy(BaseModel):
    """``guard.contract``: what each rule does on a violation, and how lenient checks are."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    required: Action = Field(
        "reject",
        description="A field is absent, or null while the training data had no missing "
        "values. `flag` serves the request with the value missing.",
    )
    type: Action = Field(
        "reject",
        description="A value of the wrong JSON type (NaN and Infinity included). `flag` "
        "serves the request with the value missing.",
    )
    range: Action = Field(
        "flag",
        description="A number outside the training range widened by `range_tolerance`.",
    )
    category: Action = Field(
        "reject", description="A categorical value the training data did not contain."
    )
    text_length: Action = Field(
        "reject",
        description="A text longer than twice the longest training text (or "
        "`max_text_length`, whichever is larger).",
    )
    range_tolerance: float = Field(
        0.1,
        ge=0,
        allow_inf_nan=False,
        description="Widen the training range [min, max] on each side by this fraction of "
        "its width before checking `range`.",
    )
    coerce: bool = Field(
        False,
        description='Apply the lossless coercions: numeric strings ("12", "12.5") to '
        'numbers, "true"/"false" to booleans, integers to strings for string categories.',
    )
    unknown_fields: Literal["ignore", "reject"] = Field(
        "ignore",
        description="Fields the model does not use: drop them, or reject the request.",
    )
    max_text_length: int | None = Field(
        None,
        ge=1,
        description="Raise the text length limit to at least this many characters.",
    )

    def action(self, rule: Rule) -> Action:
        """The action for `rule`; an ``unknown_field`` is only ever reported to reject."""
        actions: dict[Rule, Action] = {
            "required": self.required,
            "type": self.type,
            "range": self.range,
            "category": self.category,
            "text_length": self.text_length,
        }
        return actions.get(rule, "reject")


class OODPolicy(BaseModel):
    """``guard.ood``: whether requests are scored, and an optional threshold of one's own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="Score every request for distance from training.")
    threshold: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Flag rows scoring at least this; default: the threshold calibrated at "
        "registration for the registered false-alarm rate.",
    )


class CustomEntityPolicy(BaseModel):
    """One user-defined entity of ``guard.pii.custom``: a regex and an optional validator."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Upper-case entity name, e.g. EMPLOYEE_ID.")
    pattern: str = Field(
        description="A regular expression; its group `value`, if named, is what is redacted."
    )
    validator: str | None = Field(
        None, description="module:function called with each match; truthy keeps it."
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _ENTITY_NAME.match(value):
            raise ValueError(
                f"an entity name must be upper-case letters, digits and _, got {value!r}"
            )
        if value in BUILTIN_ENTITIES:
            raise ValueError(f"{value} is a built-in entity; choose another name")
        return value

    @field_validator("pattern")
    @classmethod
    def _pattern(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from None
        return value

    @field_validator("validator")
    @classmethod
    def _validator(cls, value: str | None) -> str | None:
        if value is not None and not _VALIDATOR.match(value):
            raise ValueError(f"validator must be module:function, got {value!r}")
        return value


def _regions(value: list[str], what: str) -> list[str]:
    upper = [code.upper() for code in value]
    bad = [code for code in upper if code not in phonenumbers.SUPPORTED_REGIONS]
    if bad:
        raise ValueError(f"{what} must be ISO 3166 country codes, got unknown {bad}")
    return upper


class PiiPolicy(BaseModel):
    """``guard.pii``: which fields hold personal data, which texts are scanned, and how each
    kind of value is redacted (see docs/privacy.md). Fits `bastion.guard.pii.PiiSpec`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    fields: dict[str, Operator] = Field(
        default_factory=dict,
        description="Structured request fields that are personal data: a list (pseudonymized) "
        "or field -> operator (mask, replace, drop, pseudonymize).",
    )
    scan: list[str] = Field(
        default_factory=list, description="Free-text request fields scanned with the detectors."
    )
    custom: list[CustomEntityPolicy] = Field(
        default_factory=list, description="User-defined entities (name, pattern, validator)."
    )
    entities: dict[str, Operator] | None = Field(
        None,
        description="Entity -> operator; only the entities listed are detected. Default: every "
        "built-in entity (NATIONAL_ID only with `countries`), replaced by its tag.",
    )
    countries: list[str] = Field(
        default_factory=list,
        description="ISO 3166 codes: national identifiers to detect and national phone formats.",
    )
    regions: list[str] | None = Field(
        None, description="National phone formats to recognise; default `countries`."
    )
    model_sees: Literal["raw", "redacted"] = Field(
        "raw",
        description="What the model is given for personal and scanned fields it uses; stores "
        "and logs only ever see the redacted form.",
    )

    @field_validator("fields", mode="before")
    @classmethod
    def _field_list(cls, value: Any) -> Any:
        # `fields: [email]` means every listed field is pseudonymized as a whole.
        if isinstance(value, list) and all(isinstance(name, str) for name in value):
            return dict.fromkeys(value, "pseudonymize")
        return value

    @field_validator("countries")
    @classmethod
    def _countries(cls, value: list[str]) -> list[str]:
        return _regions(value, "countries")

    @field_validator("regions")
    @classmethod
    def _phone_regions(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else _regions(value, "regions")

    @field_validator("entities")
    @classmethod
    def _entities(
        cls, value: dict[str, Operator] | None, info: ValidationInfo
    ) -> dict[str, Operator] | None:
        if value is None or "custom" not in info.data:
            return value
        known = [*BUILTIN_ENTITIES, *(c.name for c in info.data["custom"])]
        unknown = [name for name in value if name not in known]
        if unknown:
            raise ValueError(f"unknown entities {unknown}; known: {', '.join(known)}")
        return value

    @property
    def personal_fields(self) -> frozenset[str]:
        """Every field whose values may carry personal data (declared and scanned)."""
        return frozenset(self.fields) | frozenset(self.scan)


__all__ = [
    "POLICY_RULES",
    "Action",
    "ContractPolicy",
    "CustomEntityPolicy",
    "OODPolicy",
    "PiiPolicy",
    "Rule",
]
