"""web sign-in: accounts.password_hash, tokens.kind and tokens.expires_at

A web session is a token of kind "session" (the same permission checks as an API token, revoked at sign-out,
expiring); the tokens page lists only kind "access".

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 23:50:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("accounts") as batch:
        batch.add_column(sa.Column("password_hash", sa.String(length=256), nullable=True))
    with op.batch_alter_table("tokens") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=8), nullable=False, server_default="access"))
        batch.add_column(sa.Column("expires_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tokens") as batch:
        batch.drop_column("expires_at")
        batch.drop_column("kind")
    with op.batch_alter_table("accounts") as batch:
        batch.drop_column("password_hash")
