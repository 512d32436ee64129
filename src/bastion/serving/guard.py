"""The guard on the request path: input contract, OOD score and personal data, per deployment.

`DeploymentGuard` is assembled once per deployment from its spec's ``guard`` section and
the served model version (input signature, reference OOD profile). Per request, `check`:

1. runs the input contract over every instance; any rejecting violation raises
   `InvalidInput` (422) listing them all, with raw values of personal fields withheld and
   every echoed value passed through the redactor;
2. scores the contract's model rows against the OOD profile (when the version has one and
   ``guard.ood.enabled``);
3. redacts personal fields and scanned texts per ``guard.pii``; the model gets the raw or
   the redacted rows (``model_sees``), the decision log only the redacted ones;
4. counts findings, OOD flags and redactions in the metrics.

The per-instance ``guard`` block (response and decision record) holds the flagged
findings, the OOD verdict and the redaction counts per entity: never a raw value.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bastion.errors import FieldError, InvalidInput, SpecError
from bastion.guard.contract import ContractResult, Finding, InputContract, enforce
from bastion.guard.ood import OODProfile
from bastion.guard.pii import Redactor
from bastion.guard.pseudonym import Pseudonymizer
from bastion.monitor.metrics import ServingMetrics
from bastion.registry import ModelVersion
from bastion.registry.signature import InputSignature
from bastion.spec import Guard

Instance = dict[str, Any]


@dataclass(frozen=True)
class GuardedBatch:
    """A request's instances after the guard, index-aligned.

    `model_rows` is what the model scores, `stored_rows` what the decision log may keep
    (redacted), `guards` the per-instance ``guard`` blocks, `feature_rows` the validated
    model columns as sent (what policy rules see; held in memory only).
    """

    model_rows: list[Instance]
    stored_rows: list[Instance]
    guards: list[dict[str, Any]]
    feature_rows: list[Instance]


def _field_tag(field: str) -> str:
    return re.sub(r"[^A-Z0-9]+", "_", field.upper()).strip("_") or "FIELD"


def _check_redacted_columns(
    name: str, fields: Mapping[str, str], signature: InputSignature
) -> None:
    """A redacted personal field is text; a model column of another kind cannot take it."""
    errors = [
        FieldError(
            f"deployments.{name}.guard.pii.fields.{column.name}",
            f"model_sees: redacted would give the model a redacted string for its "
            f"{column.kind} column {column.name}; use model_sees: raw",
        )
        for column in signature.columns
        if column.name in fields and column.kind != "text"
    ]
    if errors:
        raise SpecError(f"{errors[0].field}: {errors[0].message}", errors=errors)


class DeploymentGuard:
    """The contract, OOD profile and redactor of one deployment; immutable once built."""

    def __init__(
        self,
        name: str,
        policy: Guard,
        version: ModelVersion,
        metrics: ServingMetrics,
        pseudonymizer: Pseudonymizer | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.metrics = metrics
        pii = policy.pii
        signature = version.input_signature
        self.columns = signature.names
        self.redactor: Redactor | None = None
        personal: frozenset[str] = frozenset()
        if pii is not None:
            self.redactor = Redactor(
                pii.entities,
                fields=pii.fields,
                scan=pii.scan,
                countries=pii.countries,
                regions=pii.regions,
                custom=pii.custom,
                pseudonymizer=pseudonymizer,
            )
            personal = pii.personal_fields
            if pii.model_sees == "redacted":
                _check_redacted_columns(name, pii.fields, signature)
        #: request fields kept besides the model's columns: personal and scanned ones, which
        #: are stored only redacted
        self.extra_fields = tuple(sorted(personal - set(self.columns)))
        self.contract = InputContract(
            signature, policy.contract, personal, extra_fields=frozenset(self.extra_fields)
        )
        self.model_sees_redacted = pii is not None and pii.model_sees == "redacted"
        self.profile: OODProfile | None = None
        if policy.ood.enabled and version.reference_profile is not None:
            self.profile = OODProfile.from_dict(version.reference_profile)
        self.threshold = policy.ood.threshold
        self._ood_flagged = metrics.ood_flagged.labels(name)
        self._ood_score = metrics.ood_score.labels(name)

    def check(self, instances: list[Any], *, prefix: str = "instances") -> GuardedBatch:
        """Guard a request's instances; raise `InvalidInput` (422) on any rejection."""
        results = self.contract.check_many(instances, prefix=prefix)
        try:
            findings = enforce(results)
        except InvalidInput as exc:
            self._count_violations(results)
            raise self._scrubbed(exc) from None
        rows = [result.row for result in results]
        verdicts: list[dict[str, Any] | None] = [None] * len(rows)
        if self.profile is not None:
            scores = self.profile.score_records(rows, threshold=self.threshold)
            verdicts = list(scores.as_dicts())
            for score in scores.score.tolist():
                self._ood_score.observe(score)
            flagged = int(scores.flagged.sum())
            if flagged:
                self._ood_flagged.inc(flagged)
        model_rows: list[Instance] = []
        stored_rows: list[Instance] = []
        guards: list[dict[str, Any]] = []
        for instance, row, found, verdict in zip(instances, rows, findings, verdicts, strict=True):
            source = dict(row)
            if self.extra_fields and isinstance(instance, dict):
                for field in self.extra_fields:
                    if field in instance:
                        source[field] = instance[field]
            stored, counts = self._redact(source)
            stored_rows.append(stored)
            model_rows.append(
                {c: stored[c] for c in self.columns} if self.model_sees_redacted else row
            )
            guards.append(
                {"findings": self._safe_findings(found), "ood": verdict, "pii": {"counts": counts}}
            )
        return GuardedBatch(model_rows, stored_rows, guards, rows)

    def _redact(self, record: Instance) -> tuple[Instance, dict[str, int]]:
        """A redacted copy of `record` and the redactions per entity (or field tag)."""
        redactor = self.redactor
        if redactor is None:
            return record, {}
        counts: Counter[str] = Counter()
        out: Instance = {}
        for field, value in record.items():
            if value is None:
                out[field] = None
            elif redactor.is_personal(field):
                out[field] = redactor.redact_value(field, value)
                counts[_field_tag(field)] += 1
            elif field in redactor.scan:
                # A non-text value of a scanned field is scanned as text: it may hold digits
                # of a phone or card number just as well.
                result = redactor.redact(value if isinstance(value, str) else str(value))
                out[field] = result.text if result.findings or isinstance(value, str) else value
                counts.update(finding.entity for finding in result.findings)
            else:
                out[field] = value
        for entity, count in counts.items():
            self.metrics.pii_redactions.labels(self.name, entity).inc(count)
        return out, dict(counts)

    def _safe_findings(self, findings: list[Finding]) -> list[Finding]:
        """Count flagged findings; pass any echoed text through the redactor."""
        for finding in findings:
            self.metrics.guard_findings.labels(self.name, finding["rule"], finding["action"]).inc()
        if self.redactor is None:
            return findings
        safe: list[Finding] = []
        for finding in findings:
            value = finding.get("value")
            if isinstance(value, str):
                finding = {**finding, "value": self._scrub(value)}
            safe.append(finding)
        return safe

    def _count_violations(self, results: list[ContractResult]) -> None:
        for result in results:
            for violation in result.violations:
                self.metrics.guard_findings.labels(
                    self.name, violation.rule, violation.action
                ).inc()

    def _scrub(self, text: str) -> str:
        return text if self.redactor is None else self.redactor.redact(text).text

    def _scrubbed(self, exc: InvalidInput) -> InvalidInput:
        """The 422 with every detectable personal value in its messages redacted."""
        if self.redactor is None:
            return exc
        errors = [
            FieldError(
                self._scrub(error.field),
                self._scrub(error.message),
                error.expected,
                rule=error.rule,
                value=None if error.value is None else self._scrub(error.value),
            )
            for error in exc.errors
        ]
        return InvalidInput(self._scrub(exc.message), errors=errors)
