"""discussions and pull requests: discussions, discussion_events, repos.discussion_seq

Numbers are per repo and shared by discussions and pull requests; ``repos.discussion_seq`` is the last one handed
out (incremented in the creating transaction, so two discussions opened at once never get the same number).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 00:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("repos") as batch:
        batch.add_column(sa.Column("discussion_seq", sa.Integer(), nullable=False, server_default="0"))
    op.create_table(
        "discussions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("repo_id", sa.String(length=24), nullable=False),
        sa.Column("num", sa.Integer(), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("is_pull_request", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("target_branch", sa.String(length=255), nullable=True),
        sa.Column("merge_commit", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_id"], ["accounts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repo_id", "num"),
    )
    op.create_index(op.f("ix_discussions_repo_id"), "discussions", ["repo_id"])
    op.create_table(
        "discussion_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=24), nullable=False),
        sa.Column("discussion_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("author_id", sa.Integer(), nullable=True),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["discussion_id"], ["discussions.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["author_id"], ["accounts.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index(op.f("ix_discussion_events_discussion_id"), "discussion_events", ["discussion_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_discussion_events_discussion_id"), table_name="discussion_events")
    op.drop_table("discussion_events")
    op.drop_index(op.f("ix_discussions_repo_id"), table_name="discussions")
    op.drop_table("discussions")
    with op.batch_alter_table("repos") as batch:
        batch.drop_column("discussion_seq")
