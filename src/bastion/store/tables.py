"""The tables. Changed only together with an Alembic migration under `migrations/versions`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Float, ForeignKey, Index, Integer, MetaData, String, Text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# A fixed naming convention keeps constraint names identical on SQLite and PostgreSQL,
# so migrations can drop or alter them by name on both.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on both databases (SQLite stores naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("datetimes stored by Bastion must be timezone-aware")
        # SQLite keeps the wall-clock time and drops the offset, so store UTC on every
        # database: values then read back unchanged and compare correctly as text.
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class ModelRow(Base):
    __tablename__ = "models"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime]


class ModelVersionRow(Base):
    """One immutable, content-addressed model artifact plus everything known about it."""

    __tablename__ = "model_versions"
    __table_args__ = (
        Index("uq_model_versions_name_version", "model_name", "version", unique=True),
        Index("uq_model_versions_name_digest", "model_name", "digest", unique=True),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(ForeignKey("models.name"))
    version: Mapped[int]
    digest: Mapped[str] = mapped_column(String(64))
    framework: Mapped[str] = mapped_column(String(32))
    artifact_path: Mapped[str] = mapped_column(Text)
    artifact_options: Mapped[dict[str, Any]]
    library_versions: Mapped[dict[str, Any]]
    input_signature: Mapped[dict[str, Any]]
    output_signature: Mapped[dict[str, Any]]
    data_fingerprint: Mapped[str | None] = mapped_column(String(64))
    metrics: Mapped[dict[str, Any]]
    tags: Mapped[dict[str, Any]]
    description: Mapped[str | None] = mapped_column(Text)
    stage: Mapped[str] = mapped_column(String(16))
    author: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]
    #: the fitted OOD profile (`OODProfile.to_dict()`), when a sample was given
    reference_profile: Mapped[dict[str, Any] | None]
    #: the score calibration fitted by `bastion policy tune` (`Calibration.to_dict()`),
    #: applied to this version's scores at serving
    calibration: Mapped[dict[str, Any] | None]
    #: the drift reference profile (`bastion.monitor.profile.Profile.to_dict()`)
    monitor_profile: Mapped[dict[str, Any] | None]


class StageTransitionRow(Base):
    """History of stage moves; the current stage lives on the version row."""

    __tablename__ = "stage_transitions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    model_name: Mapped[str] = mapped_column(String(128), index=True)
    version: Mapped[int]
    from_stage: Mapped[str] = mapped_column(String(16))
    to_stage: Mapped[str] = mapped_column(String(16))
    actor: Mapped[str | None] = mapped_column(String(128))
    at: Mapped[datetime]


class DecisionRow(Base):
    """One scored request. Inputs are stored redacted (the deployment's ``guard.pii``), never
    raw personal data; subjects only as keys; `guard` holds findings without raw values."""

    __tablename__ = "decisions"
    __table_args__ = (Index("ix_decisions_deployment_created_at", "deployment", "created_at"),)

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    created_at: Mapped[datetime]
    deployment: Mapped[str] = mapped_column(String(128))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[int]
    subject_key: Mapped[str | None] = mapped_column(String(80), index=True)
    inputs: Mapped[dict[str, Any]]
    outputs: Mapped[dict[str, Any]]
    outcome: Mapped[Any] = mapped_column(JSON)
    latency_ms: Mapped[float] = mapped_column(Float)
    guard: Mapped[dict[str, Any] | None]
    #: how the outcome was reached: policy version, source (rule, band, fallback,
    #: overflow), rule or band, reason code, rule errors, calibration, review routing
    policy: Mapped[dict[str, Any] | None]
    #: per-feature contributions in the caller's fields, method, base value, reasons
    explanation: Mapped[dict[str, Any] | None]


class AuditEventRow(Base):
    """One control-plane change. Append-only; each row's hash covers the previous row's."""

    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(64), index=True)
    target: Mapped[str] = mapped_column(String(256))
    before_digest: Mapped[str | None] = mapped_column(String(64))
    after_digest: Mapped[str | None] = mapped_column(String(64))
    details: Mapped[dict[str, Any]]
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)


class ApiKeyRow(Base):
    """An API key, stored only as the SHA-256 of its secret."""

    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    deployment: Mapped[str | None] = mapped_column(String(128))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    created_by: Mapped[str | None] = mapped_column(String(128))
    revoked_at: Mapped[datetime | None]


class ReviewTaskRow(Base):
    """A decision waiting for (or settled by) a human reviewer.

    A task is ``open`` until claimed; a claim is a lease (``lease_expires_at``) that lapses
    back to open. ``resolved`` tasks carry the verdict; ``escalated`` ones wait for a
    senior reviewer and can be claimed again.
    """

    __tablename__ = "review_tasks"
    __table_args__ = (
        Index("ix_review_tasks_deployment_status_priority", "deployment", "status", "priority"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    decision_id: Mapped[str] = mapped_column(String(36), unique=True)
    deployment: Mapped[str] = mapped_column(String(128))
    subject_key: Mapped[str | None] = mapped_column(String(80), index=True)
    created_at: Mapped[datetime]
    due_at: Mapped[datetime]
    priority: Mapped[float] = mapped_column(Float)
    #: why the case is here: ``band``, ``rule``, ``fallback`` or ``exploration``
    reason: Mapped[str] = mapped_column(String(16))
    #: probability with which the case was sent to review (1.0 unless sampled)
    sampling_probability: Mapped[float] = mapped_column(Float)
    #: what the policy would have decided without a reviewer (the band's outcome)
    model_outcome: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16))
    escalation_level: Mapped[int] = mapped_column(Integer, default=0)
    claimed_by: Mapped[str | None] = mapped_column(String(128))
    lease_expires_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None]
    verdict: Mapped[str | None] = mapped_column(String(64))
    notes: Mapped[str | None] = mapped_column(Text)


class FeedbackRow(Base):
    """A late label for a decision: from the API, an import, or a reviewer's verdict."""

    __tablename__ = "feedback"
    __table_args__ = (Index("ix_feedback_deployment_created_at", "deployment", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    decision_id: Mapped[str] = mapped_column(String(36), index=True)
    deployment: Mapped[str] = mapped_column(String(128))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[int]
    subject_key: Mapped[str | None] = mapped_column(String(80), index=True)
    label: Mapped[Any] = mapped_column(JSON)
    #: ``api``, ``import`` or ``review``
    source: Mapped[str] = mapped_column(String(16))
    #: for review labels: the probability the case was sent to review (selection weight)
    sampling_probability: Mapped[float | None] = mapped_column(Float)
    actor: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime]


class MonitorWindowRow(Base):
    """One window of decisions compared with the reference: its profile (mergeable), the
    drift report, label-based performance and the label-free estimate."""

    __tablename__ = "monitor_windows"
    __table_args__ = (Index("ix_monitor_windows_deployment_ended_at", "deployment", "ended_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(String(128))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[int]
    started_at: Mapped[datetime]
    ended_at: Mapped[datetime]
    rows: Mapped[int]
    profile: Mapped[dict[str, Any]]
    drift: Mapped[dict[str, Any] | None]
    performance: Mapped[dict[str, Any] | None]
    estimated: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]


class AlertStateRow(Base):
    """The current state of one alert rule of one deployment."""

    __tablename__ = "alert_states"
    __table_args__ = (Index("uq_alert_states_deployment_name", "deployment", "name", unique=True),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(64))
    #: ``ok``, ``pending`` (condition held, not yet for enough windows) or ``firing``
    state: Mapped[str] = mapped_column(String(16))
    consecutive: Mapped[int]
    since: Mapped[datetime]
    updated_at: Mapped[datetime]
    details: Mapped[dict[str, Any] | None]


class AlertEventRow(Base):
    """A change of an alert's state (history), and whether it was notified."""

    __tablename__ = "alert_events"
    __table_args__ = (Index("ix_alert_events_deployment_at", "deployment", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    deployment: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    details: Mapped[dict[str, Any] | None]
    notified_at: Mapped[datetime | None]
    attempts: Mapped[int]
