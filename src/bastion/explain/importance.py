"""Global importance of a deployment's fields, from the explanations stored with its decisions.

Reads ``decisions.explanation`` newest first in bounded chunks (never the whole table into
memory) and aggregates per field: mean |contribution| (how much the field moves decisions),
mean signed contribution (which way on average), and the share of decisions with reason
codes (adverse outcomes) where the field was one of the reasons.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from bastion.store.tables import DecisionRow

#: rows fetched per round trip
_CHUNK = 500


@dataclass(frozen=True)
class FieldImportance:
    field: str
    mean_abs: float
    mean: float
    top_reason_share: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "field": self.field,
            "mean_abs": self.mean_abs,
            "mean": self.mean,
            "top_reason_share": self.top_reason_share,
        }


@dataclass(frozen=True)
class ImportanceReport:
    """Per-field importance over `explained` decisions, most important field first."""

    deployment: str
    explained: int
    with_reasons: int
    fields: list[FieldImportance]
    methods: dict[str, int] = field(default_factory=dict)
    outputs: dict[str, int] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "deployment": self.deployment,
            "explained": self.explained,
            "with_reasons": self.with_reasons,
            "fields": [f.to_dict() for f in self.fields],
            "methods": dict(self.methods),
            "outputs": dict(self.outputs),
            "versions": dict(self.versions),
        }


def global_importance(session: Session, deployment: str, limit: int) -> ImportanceReport:
    """Aggregate the newest `limit` stored explanations of `deployment`."""
    query = (
        select(DecisionRow.explanation, DecisionRow.model_name, DecisionRow.model_version)
        .where(DecisionRow.deployment == deployment, DecisionRow.explanation.is_not(None))
        .order_by(DecisionRow.created_at.desc(), DecisionRow.id.desc())
        .execution_options(yield_per=_CHUNK)
    )
    absolute: defaultdict[str, float] = defaultdict(float)
    signed: defaultdict[str, float] = defaultdict(float)
    reasons: Counter[str] = Counter()
    methods: Counter[str] = Counter()
    outputs: Counter[str] = Counter()
    versions: Counter[str] = Counter()
    explained = with_reasons = 0
    # a server-side cursor on PostgreSQL: closed explicitly when the limit stops early
    result = session.execute(query)
    try:
        for explanation, model_name, model_version in result:
            # a JSON null, or a record from before explanations had this shape
            if not isinstance(explanation, dict) or not isinstance(
                explanation.get("contributions"), dict
            ):
                continue
            explained += 1
            for name, value in explanation["contributions"].items():
                absolute[name] += abs(float(value))
                signed[name] += float(value)
            listed = explanation.get("reasons") or []
            if listed:
                with_reasons += 1
                reasons.update({str(r.get("field")) for r in listed if isinstance(r, dict)})
            methods[str(explanation.get("method"))] += 1
            outputs[str(explanation.get("output"))] += 1
            versions[f"{model_name}:{model_version}"] += 1
            if explained >= limit:
                break
    finally:
        result.close()
    fields = [
        FieldImportance(
            field=name,
            mean_abs=absolute[name] / explained,
            mean=signed[name] / explained,
            top_reason_share=reasons[name] / with_reasons if with_reasons else 0.0,
        )
        for name in absolute
    ]
    fields.sort(key=lambda f: (-f.mean_abs, f.field))
    return ImportanceReport(
        deployment=deployment,
        explained=explained,
        with_reasons=with_reasons,
        fields=fields,
        methods=dict(methods),
        outputs=dict(outputs),
        versions=dict(versions),
    )
