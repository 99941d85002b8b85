"""host_generation: a counter moved by every change to a Space's host or visibility, so that the proxy's host index
can be checked for changes made by other processes with one small read

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-07 22:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "host_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "n": 0}])


def downgrade() -> None:
    op.drop_table("host_generation")
