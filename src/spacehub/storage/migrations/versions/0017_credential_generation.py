"""credential_generation: a counter moved by every change to tokens, accounts and memberships, so that a cache of
who a token is can be checked with one small read

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 21:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    table = op.create_table(
        "credential_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.bulk_insert(table, [{"id": 1, "n": 0}])


def downgrade() -> None:
    op.drop_table("credential_generation")
