"""lfs_objects.size as a 64-bit integer (LFS objects can be larger than 2 GiB; PostgreSQL's INTEGER is 32-bit)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22 13:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("lfs_objects", schema=None) as batch_op:
        batch_op.alter_column("size", existing_type=sa.Integer(), type_=sa.BigInteger(), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("lfs_objects", schema=None) as batch_op:
        batch_op.alter_column("size", existing_type=sa.BigInteger(), type_=sa.Integer(), existing_nullable=False)
