"""space_storage: a Space's persistent storage folder key, its volumes and the measured usage

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "space_storage",
        sa.Column("repo_id", sa.String(length=24), nullable=False),
        sa.Column("key", sa.String(length=16), nullable=True),
        sa.Column("volumes", sa.Text(), nullable=True),
        sa.Column("used_bytes", sa.BigInteger(), nullable=True),
        sa.Column("limit_bytes", sa.BigInteger(), nullable=True),
        sa.Column("enforcement", sa.String(length=128), nullable=True),
        sa.Column("stopped_reason", sa.String(length=512), nullable=True),
        sa.Column("measured_at", sa.DateTime(), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repo_id"),
    )


def downgrade() -> None:
    op.drop_table("space_storage")
