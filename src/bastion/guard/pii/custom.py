"""User-defined detectors: a regex and an optional validator, given as a callable or by path."""

from __future__ import annotations

import importlib
import re

from bastion.guard.pii.detectors import Finding, Validator, spans_to_findings


def load_validator(path: str) -> Validator:
    """Import a validator given as ``module:function`` (e.g. ``stdnum.de.idnr:is_valid``)."""
    module_name, _, attr = path.partition(":")
    if not module_name or not attr:
        raise ValueError(f"validator must be 'module:function', got {path!r}")
    try:
        target: object = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ValueError(f"validator {path!r} cannot be imported: {exc}") from exc
    if not callable(target):
        raise ValueError(f"validator {path!r} is not callable")
    function = target
    return lambda value: bool(function(value))


class RegexDetector:
    """A user-defined entity: every match of `pattern` (the whole match, or group ``value``
    if the pattern names one) that `validator` accepts, when one is given.

    `validator` is a callable taking the matched text, or its ``module:function`` path; a
    validator raising ValueError (as stdnum's ``validate`` functions do) rejects the value.
    """

    def __init__(self, name: str, pattern: str, validator: Validator | str | None = None) -> None:
        if not re.fullmatch(r"[A-Z][A-Z0-9_]*", name):
            raise ValueError(
                f"name must be an upper-case entity name like EMPLOYEE_ID, got {name!r}"
            )
        try:
            self._pattern = re.compile(pattern)
        except re.error as exc:
            raise ValueError(
                f"pattern is not a valid regular expression ({exc}): {pattern!r}"
            ) from exc
        if self._pattern.match(""):
            raise ValueError(f"pattern must not match the empty string: {pattern!r}")
        self.name = name
        self._group: int | str = "value" if "value" in self._pattern.groupindex else 0
        self._validator = load_validator(validator) if isinstance(validator, str) else validator

    def find(self, text: str) -> list[Finding]:
        spans = []
        for m in self._pattern.finditer(text):
            start, end = m.span(self._group)
            if start == end or start < 0:
                continue
            if self._validator is None or _accepts(self._validator, text[start:end]):
                spans.append((start, end))
        return spans_to_findings(self.name, text, spans)


def _accepts(validator: Validator, value: str) -> bool:
    try:
        return bool(validator(value))
    except ValueError:
        return False
