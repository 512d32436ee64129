"""add reference profile to model versions and guard findings to decisions

Revision ID: 20261126_0003
Revises: 20261126_0002
Create Date: 2026-11-26 14:10:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20261126_0003"
down_revision: str | None = "20261126_0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reference_profile", sa.JSON(), nullable=True))

    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("guard", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("decisions", schema=None) as batch_op:
        batch_op.drop_column("guard")

    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("reference_profile")
