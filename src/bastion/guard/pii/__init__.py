"""Personal data in request fields and free text: detectors, operators and the `Redactor`.

>>> from bastion.guard.pii import Redactor
>>> redactor = Redactor({"EMAIL": "replace", "PHONE": "mask"})
>>> redactor.redact("Mail ann@example.org or call +1 212-555-0187.").text
'Mail <EMAIL> or call +* ***-***-****.'
"""

from bastion.guard.pii.custom import RegexDetector, load_validator
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
from bastion.guard.pii.national import NATIONAL_IDS, NationalIdDetector
from bastion.guard.pii.operators import (
    OPERATORS,
    Operator,
    make_operator,
    mask,
    normalize,
    pseudonym_tag,
    pseudonym_tags,
)
from bastion.guard.pii.phone import PhoneDetector
from bastion.guard.pii.redactor import (
    ENTITIES,
    CustomEntity,
    PiiSpec,
    PiiSummary,
    RedactionResult,
    Redactor,
    resolve_overlaps,
    summarize,
)

__all__ = [
    "CREDIT_CARD",
    "EMAIL",
    "ENTITIES",
    "IBAN",
    "IP_ADDRESS",
    "NATIONAL_ID",
    "NATIONAL_IDS",
    "OPERATORS",
    "PHONE",
    "US_SSN",
    "CreditCardDetector",
    "CustomEntity",
    "Detector",
    "EmailDetector",
    "Finding",
    "IbanDetector",
    "IpAddressDetector",
    "NationalIdDetector",
    "Operator",
    "PhoneDetector",
    "PiiSpec",
    "PiiSummary",
    "RedactionResult",
    "Redactor",
    "RegexDetector",
    "UsSsnDetector",
    "load_validator",
    "make_operator",
    "mask",
    "normalize",
    "pseudonym_tag",
    "pseudonym_tags",
    "resolve_overlaps",
    "summarize",
]
