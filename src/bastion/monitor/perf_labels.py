"""Late labels for decisions: checked against the decision's model, stored as feedback.

A label must make sense for the model version that made the decision: one of its classes
for a classifier (``0``/``1`` also name the two classes of a binary classifier whose classes
are words: 1 is ``classes[1]``, the scored class), a finite number for a regressor. The
stored label is the class itself (``"approve"``, ``1``), so every reader compares like with
like. The API (`FeedbackService.record`) and imports (`bastion.monitor.perf_import`) share
this check.

Labels keep their history (see `bastion.review.feedback`: the latest observation wins).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from bastion.errors import FieldError, InvalidInput, NotFound
from bastion.registry import Registry
from bastion.registry.signature import OutputSignature
from bastion.review.feedback import Feedback, add_feedback, feedback_for_decision, list_feedback
from bastion.store import Database
from bastion.store.tables import DecisionRow

Clock = Callable[[], datetime]

#: an observation time this far past the server's clock is still accepted (clock skew)
FUTURE_SKEW = timedelta(minutes=5)
#: model versions whose output signature is kept in memory
SIGNATURE_CACHE = 256
#: classes assumed for a classifier registered without class labels
DEFAULT_CLASSES: list[str | int] = [0, 1]


def normalise_label(value: Any, signature: OutputSignature) -> int | float | str:
    """The label as stored for a decision of a model with `signature`, or `InvalidInput`.

    >>> normalise_label("1", OutputSignature(task="classification", classes=[0, 1]))
    1
    >>> normalise_label(1, OutputSignature(task="classification", classes=["deny", "approve"]))
    'approve'
    >>> normalise_label("12.5", OutputSignature(task="regression"))
    12.5
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise InvalidInput("a label is required", errors=[FieldError("label", "is required")])
    if signature.task == "regression":
        return _number(value)
    classes = signature.classes or DEFAULT_CLASSES
    text = _text(value)
    for cls in classes:
        if text == str(cls):
            return cls
    words = not any(isinstance(c, int) for c in classes)
    if words and len(classes) == 2 and text in ("0", "1"):
        return classes[int(text)]
    expected = ", ".join(str(c) for c in classes)
    if words and len(classes) == 2:
        expected += " (or 0/1 for them)"
    raise InvalidInput(
        f"label {_shown(value)} is not one of the model's classes: {expected}",
        errors=[FieldError("label", "is not one of the model's classes", expected=expected)],
    )


def _shown(value: Any) -> str:
    """A value for an error message, cut short (a body may carry a long string)."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _text(value: Any) -> str:
    """A label's text for matching: True is "1", 1.0 is "1", "1" stays "1"."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _number(value: Any) -> float:
    bad = InvalidInput(
        f"the label of a regression model must be a finite number, got {_shown(value)}",
        errors=[FieldError("label", "must be a finite number", expected="a number")],
    )
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise bad
    try:
        number = float(value)
    except ValueError:
        raise bad from None
    if not math.isfinite(number):
        raise bad
    return number


def parse_time(value: Any, field: str) -> datetime:
    """An ISO 8601 time (or a datetime) as aware UTC; a time without offset is read as UTC."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise InvalidInput(
                f"{field} must be an ISO 8601 time such as 2026-11-26T12:00:00Z, got {value!r}",
                errors=[FieldError(field, "must be an ISO 8601 time", expected="ISO 8601")],
            ) from None
    else:
        raise InvalidInput(
            f"{field} must be an ISO 8601 time string, got {type(value).__name__}",
            errors=[FieldError(field, "must be an ISO 8601 time string")],
        )
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


@dataclass(frozen=True)
class DecisionRef:
    """What a label needs to know about its decision."""

    id: str
    deployment: str
    model_name: str
    model_version: int
    subject_key: str | None
    created_at: datetime


def decision_ref(row: DecisionRow) -> DecisionRef:
    return DecisionRef(
        row.id, row.deployment, row.model_name, row.model_version, row.subject_key, row.created_at
    )


def check_observed_at(observed: datetime, decision: DecisionRef, now: datetime) -> None:
    """An outcome is observed after its decision and not in the future."""
    if observed > now + FUTURE_SKEW:
        raise InvalidInput(
            f"observed_at {observed.isoformat()} is in the future",
            errors=[FieldError("observed_at", "is in the future")],
        )
    if observed < decision.created_at:
        raise InvalidInput(
            f"observed_at {observed.isoformat()} is before the decision was made "
            f"({decision.created_at.isoformat()})",
            errors=[FieldError("observed_at", "is before the decision")],
        )


class Signatures:
    """Output signatures of model versions, read from the registry once each."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cache: dict[tuple[str, int], OutputSignature] = {}

    def get(self, name: str, version: int) -> OutputSignature:
        key = (name, version)
        if key not in self._cache:
            if len(self._cache) >= SIGNATURE_CACHE:
                self._cache.clear()
            self._cache[key] = self.registry.get(f"{name}:{version}").output_signature
        return self._cache[key]


@dataclass(frozen=True)
class Recorded:
    """A stored label and how many labels the decision had before it."""

    feedback: Feedback
    earlier: int

    def to_dict(self) -> dict[str, Any]:
        return {**self.feedback.to_dict(), "earlier_labels": self.earlier}


class FeedbackService:
    """Record and list late labels. Blocking: call from a worker thread."""

    def __init__(self, database: Database, registry: Registry, clock: Clock) -> None:
        self.database = database
        self.signatures = Signatures(registry)
        self.clock = clock

    def record(
        self,
        decision_id: str,
        label: Any,
        *,
        actor: str,
        observed_at: Any = None,
        deployment: str | None = None,
    ) -> Recorded:
        """Store an API label for a decision (of `deployment` only, when the key is bound).

        Raises `NotFound` for an unknown decision (or one of another deployment) and
        `InvalidInput` for a label or observation time that does not fit it.
        """
        with self.database.transaction() as session:
            row = session.get(DecisionRow, decision_id)
            decision = None if row is None else decision_ref(row)
        if decision is None or (deployment is not None and decision.deployment != deployment):
            raise NotFound(
                f"no decision with id {decision_id!r} (decisions are stored within moments "
                "of being made; erased and expired ones are gone)"
            )
        signature = self.signatures.get(decision.model_name, decision.model_version)
        value = normalise_label(label, signature)
        now = self.clock()
        observed = now if observed_at is None else parse_time(observed_at, "observed_at")
        check_observed_at(observed, decision, now)
        with self.database.transaction() as session:
            earlier = len(feedback_for_decision(session, decision.id))
            stored = add_feedback(
                session,
                decision_id=decision.id,
                deployment=decision.deployment,
                model_name=decision.model_name,
                model_version=decision.model_version,
                subject_key=decision.subject_key,
                label=value,
                source="api",
                sampling_probability=None,
                actor=actor,
                created_at=observed,
            )
        return Recorded(stored, earlier)

    def list(
        self, deployment: str, *, limit: int = 50, decision_id: str | None = None
    ) -> list[Feedback]:
        """The deployment's labels, newest first."""
        if not 1 <= limit <= 10_000:
            raise InvalidInput(f"limit must be between 1 and 10000, got {limit}")
        with self.database.transaction() as session:
            return list_feedback(session, deployment, limit=limit, decision_id=decision_id)
