"""pull request previews survive a restart: preview_status

What the runtime last saw of each preview (stage, the release it serves from, its revision and flavor), so that a
restart of SpaceHub adopts a running preview's instance and keeps a sleeping one asleep (runtime.reconciler).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 20:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "preview_status",
        sa.Column("repo_id", sa.String(length=24), nullable=False),
        sa.Column("num", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=24), nullable=False),
        sa.Column("serving_release", sa.String(length=64), nullable=True),
        sa.Column("serving_revision", sa.String(length=40), nullable=True),
        sa.Column("current_hardware", sa.String(length=32), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("repo_id", "num"),
    )


def downgrade() -> None:
    op.drop_table("preview_status")
