"""hardware and billing: space_status.devices, billing_accounts, usage_intervals

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-23 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("space_status") as batch:
        batch.add_column(sa.Column("devices", sa.String(length=256), nullable=True))
    op.create_table(
        "billing_accounts",
        sa.Column("account_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("note", sa.String(length=256), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["account_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("account_id"),
    )
    op.create_table(
        "usage_intervals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("owner_id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.String(length=24), nullable=False),
        sa.Column("space_name", sa.String(length=192), nullable=False),
        sa.Column("flavor", sa.String(length=32), nullable=False),
        sa.Column("unit_cost_micro_usd", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("ended_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(["owner_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_usage_intervals_owner_id", "usage_intervals", ["owner_id"])
    op.create_index("ix_usage_intervals_repo_id", "usage_intervals", ["repo_id"])
    op.create_index("ix_usage_intervals_ended_at", "usage_intervals", ["ended_at"])


def downgrade() -> None:
    op.drop_index("ix_usage_intervals_ended_at", "usage_intervals")
    op.drop_index("ix_usage_intervals_repo_id", "usage_intervals")
    op.drop_index("ix_usage_intervals_owner_id", "usage_intervals")
    op.drop_table("usage_intervals")
    op.drop_table("billing_accounts")
    with op.batch_alter_table("space_status") as batch:
        batch.drop_column("devices")
