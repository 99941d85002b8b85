"""repo lfs objects: which LFS objects each repo may reference

The blob store stays one, shared and deduplicated; ``repo_lfs_objects`` says which of its objects a repo may use
(its refs reference them, or a user uploaded them to it), so that knowing an object's sha256 no longer lets a writer
put another repo's object into theirs, nor a reader download it. Existing repos get ``lfs_indexed`` false: their
objects are listed from their refs at the first check (services.lfs_objects), no git needed here.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 02:55:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repo_lfs_objects",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.String(length=24), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("uploader_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["uploader_id"], ["accounts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repo_id", "sha256", "uploader_id"),
    )
    op.create_index(op.f("ix_repo_lfs_objects_repo_id"), "repo_lfs_objects", ["repo_id"], unique=False)
    # A plain ADD COLUMN (no batch table copy on SQLite, which would lose 0011's expression indexes)
    op.add_column("repos", sa.Column("lfs_indexed", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    op.drop_column("repos", "lfs_indexed")  # SQLite ≥ 3.35 drops a column in place
    op.drop_index(op.f("ix_repo_lfs_objects_repo_id"), table_name="repo_lfs_objects")
    op.drop_table("repo_lfs_objects")
