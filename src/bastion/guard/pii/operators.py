"""What happens to a detected value: ``mask``, ``replace``, ``drop`` or ``pseudonymize``.

=============  ===========================================  ===============================
operator       result                                       example (EMAIL ``ann@x.org``)
=============  ===========================================  ===============================
mask           every letter and digit becomes ``*``;        ``***@*.***``
               separators (space ``-./()@:+_``) stay;
               cards and IBANs keep their last 4 characters
replace        the entity tag                               ``<EMAIL>``
drop           nothing: the value is removed                ``""``
pseudonymize   ``<ENTITY:key id:16 hex of HMAC-SHA256>``      ``<EMAIL:3f2a9c1e:8d0c…>``
=============  ===========================================  ===============================

Pseudonyms are computed over the *normalised* value (`normalize`), so ``Ann@X.org`` and
``ann@x.org`` share one pseudonym, as do ``+1 212-555-0187`` and ``+12125550187``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from typing import Literal, get_args

from bastion.guard.pii.detectors import (
    CREDIT_CARD,
    EMAIL,
    IBAN,
    IP_ADDRESS,
    NATIONAL_ID,
    PHONE,
    US_SSN,
)
from bastion.guard.pseudonym import Pseudonymizer

Operator = Literal["mask", "replace", "drop", "pseudonymize"]
OPERATORS: tuple[str, ...] = get_args(Operator)

MASK_CHAR = "*"
PSEUDONYM_HEX_DIGITS = 16
SEPARATORS = frozenset(" -./()@:+_")
KEEP_LAST: dict[str, int] = {CREDIT_CARD: 4, IBAN: 4}
"""Characters left visible by ``mask``, per entity (as on a card receipt or bank statement)."""

OperatorFunction = Callable[[str], str]

_NUMBER_SEPARATORS = re.compile(r"[\s\-./()]")
_NUMBERS = frozenset({PHONE, CREDIT_CARD, IBAN, US_SSN, NATIONAL_ID})


def mask(value: str, keep_last: int = 0) -> str:
    """Replace every character but separators with ``*``, keeping the last `keep_last`
    letters/digits when at least twice as many are hidden."""
    alnum = sum(c not in SEPARATORS for c in value)
    keep = keep_last if alnum >= 3 * keep_last else 0
    out = []
    for char in reversed(value):
        if char in SEPARATORS:
            out.append(char)
        elif keep:
            out.append(char)
            keep -= 1
        else:
            out.append(MASK_CHAR)
    return "".join(reversed(out))


def normalize(entity: str, value: str) -> str:
    """The canonical form a pseudonym is computed over: e-mails lower-cased, IP addresses in
    their compressed form, number-like entities without separators (upper-cased)."""
    value = value.strip()
    if entity == EMAIL:
        return value.lower()
    if entity == IP_ADDRESS:
        try:
            return str(ipaddress.ip_address(value))
        except ValueError:
            return value
    if entity in _NUMBERS:
        return _NUMBER_SEPARATORS.sub("", value).upper()
    return value


def pseudonym_tag(
    pseudonymizer: Pseudonymizer, entity: str, value: str, key_id: str | None = None
) -> str:
    """``<ENTITY:key id:hmac16>`` for `value` under the current (or the named) key."""
    key = pseudonymizer.key_id if key_id is None else key_id
    mac = pseudonymizer.mac(normalize(entity, value), key)[:PSEUDONYM_HEX_DIGITS]
    return f"<{entity}:{key}:{mac}>"


def pseudonym_tags(pseudonymizer: Pseudonymizer, entity: str, value: str) -> list[str]:
    """The tag `value` gets under every known key, current first: what erasure searches
    text for, so values pseudonymized before a key rotation are found too."""
    return [pseudonym_tag(pseudonymizer, entity, value, key_id) for key_id in pseudonymizer.key_ids]


def make_operator(
    operator: str, entity: str, pseudonymizer: Pseudonymizer | None = None
) -> OperatorFunction:
    """The function applying `operator` to a value of `entity`.

    Raises ValueError for an unknown operator, or ``pseudonymize`` without a pseudonymizer.
    """
    if operator == "mask":
        keep_last = KEEP_LAST.get(entity, 0)
        return lambda value: mask(value, keep_last)
    if operator == "replace":
        tag = f"<{entity}>"
        return lambda value: tag
    if operator == "drop":
        return lambda value: ""
    if operator == "pseudonymize":
        if pseudonymizer is None:
            raise ValueError(f"operator 'pseudonymize' for {entity} needs a pseudonymization key")
        keyed = pseudonymizer
        return lambda value: pseudonym_tag(keyed, entity, value)
    raise ValueError(f"operator must be one of {', '.join(OPERATORS)}, got {operator!r}")
