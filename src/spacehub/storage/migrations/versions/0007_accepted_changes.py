"""accepted changes: spaces.change_seq/change/change_wakes, space_status.seen_change

The Hub records that it accepted a change (a commit, restart, new hardware, storage, pause) on the Space's settings
row; the runtime records which change it has seen on the status row, which it alone writes. Until it has seen the
newest one, the runtime document answers the stage the change leads to (services.spaces.runtime).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 23:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("spaces") as batch:
        batch.add_column(sa.Column("change_seq", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("change", sa.String(length=8), nullable=True))
        batch.add_column(sa.Column("change_wakes", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("space_status") as batch:
        batch.add_column(sa.Column("seen_change", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("space_status") as batch:
        batch.drop_column("seen_change")
    with op.batch_alter_table("spaces") as batch:
        batch.drop_column("change_wakes")
        batch.drop_column("change")
        batch.drop_column("change_seq")
