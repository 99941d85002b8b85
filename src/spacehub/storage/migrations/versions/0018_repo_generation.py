"""repos.generation: a counter moved by every transaction that changes a repo or a row of it, so that an answer
about the repo can be checked with one small read

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 03:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("repos", sa.Column("generation", sa.BigInteger(), nullable=False, server_default="0"))


def downgrade() -> None:
    # not batch mode: SQLite's copy of the table would lose the expression index (0011); both databases drop a column
    op.execute("ALTER TABLE repos DROP COLUMN generation")
