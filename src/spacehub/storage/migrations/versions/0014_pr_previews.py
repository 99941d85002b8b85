"""pull request previews: discussions.preview_at

A Space's pull request can be previewed: the runtime runs the pull request's head at its own host while
``preview_at`` (when the preview was asked for) is set and the pull request is open (services.previews).

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 18:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("discussions") as batch:
        batch.add_column(sa.Column("preview_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("discussions") as batch:
        batch.drop_column("preview_at")
