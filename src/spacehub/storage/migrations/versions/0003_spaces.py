"""spaces (desired runtime settings) and space_status (what the runtime reports)

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22 13:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spaces",
        sa.Column("repo_id", sa.String(length=24), nullable=False),
        sa.Column("hardware", sa.String(length=32), nullable=False),
        sa.Column("sleep_time", sa.Integer(), nullable=True),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("restart_generation", sa.Integer(), nullable=False),
        sa.Column("factory_generation", sa.Integer(), nullable=False),
        sa.Column("storage_tier", sa.String(length=8), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repo_id"),
    )
    op.create_table(
        "space_status",
        sa.Column("repo_id", sa.String(length=24), nullable=False),
        sa.Column("stage", sa.String(length=24), nullable=False),
        sa.Column("error_message", sa.String(length=4000), nullable=True),
        sa.Column("detail", sa.String(length=64), nullable=True),
        sa.Column("current_hardware", sa.String(length=32), nullable=True),
        sa.Column("serving_revision", sa.String(length=40), nullable=True),
        sa.Column("serving_release", sa.String(length=64), nullable=True),
        sa.Column("limits", sa.String(length=256), nullable=True),
        sa.Column("factory_done", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repo_id"),
    )


def downgrade() -> None:
    op.drop_table("space_status")
    op.drop_table("spaces")
