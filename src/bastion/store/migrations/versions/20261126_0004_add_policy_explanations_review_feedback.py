"""add policy and explanation to decisions, calibration to versions, review tasks, feedback

Revision ID: 20261126_0004
Revises: 20261126_0003
Create Date: 2026-11-26 15:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_0004"
down_revision: str | None = "20261126_0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("calibration", sa.JSON(), nullable=True))

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("policy", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("explanation", sa.JSON(), nullable=True))

    op.create_table(
        "review_tasks",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("subject_key", sa.String(length=80), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("reason", sa.String(length=16), nullable=False),
        sa.Column("sampling_probability", sa.Float(), nullable=False),
        sa.Column("model_outcome", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("escalation_level", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.String(length=128), nullable=True),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("verdict", sa.String(length=64), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_review_tasks")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_review_tasks_decision_id")),
    )
    with op.batch_alter_table("review_tasks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_review_tasks_deployment_status_priority",
            ["deployment", "status", "priority"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_review_tasks_subject_key"), ["subject_key"], unique=False
        )

    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("decision_id", sa.String(length=36), nullable=False),
        sa.Column("deployment", sa.String(length=128), nullable=False),
        sa.Column("model_name", sa.String(length=128), nullable=False),
        sa.Column("model_version", sa.Integer(), nullable=False),
        sa.Column("subject_key", sa.String(length=80), nullable=True),
        sa.Column("label", sa.JSON(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("sampling_probability", sa.Float(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feedback")),
    )
    with op.batch_alter_table("feedback", schema=None) as batch_op:
        batch_op.create_index(
            "ix_feedback_deployment_created_at", ["deployment", "created_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_feedback_decision_id"), ["decision_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_feedback_subject_key"), ["subject_key"], unique=False)


def downgrade() -> None:
    op.drop_table("feedback")
    op.drop_table("review_tasks")
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("explanation")
        batch_op.drop_column("policy")
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("calibration")
