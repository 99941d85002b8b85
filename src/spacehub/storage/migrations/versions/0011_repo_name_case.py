"""repo name case: two accounts, or two repos of one owner and type, never differ only in case

Repo ids resolve in any case (``Alice/My-Model`` is ``alice/my-model``, as on the Hub), so names that differ only in
case would be two repos behind one id. The services refused such names already; these unique indexes on ``lower(name)``
make the database refuse them too (both SQLite and PostgreSQL index expressions), and serve the case-insensitive
lookups. A database that somehow holds such a pair cannot be upgraded: the migration stops and names them.

Revision ID: 0011
Revises: 0010 (written after 0009, re-chained after 0010 at merge)
Create Date: 2026-12-06 02:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _refuse_clashes() -> None:
    conn = op.get_bind()
    clashes = [
        f"account {row[0]}"
        for row in conn.execute(sa.text("SELECT lower(name) FROM accounts GROUP BY lower(name) HAVING count(*) > 1"))
    ]
    clashes += [
        f"{row[0]} repo {row[1]} of account #{row[2]}"
        for row in conn.execute(
            sa.text(
                "SELECT type, lower(name), owner_id FROM repos GROUP BY type, owner_id, lower(name) HAVING count(*) > 1"
            )
        )
    ]
    if clashes:
        raise RuntimeError(
            "These names exist in several cases; rename all but one of each (move_repo, with the previous"
            " version) and start again: " + ", ".join(clashes)
        )


def upgrade() -> None:
    _refuse_clashes()
    op.create_index("uq_accounts_lower_name", "accounts", [sa.text("lower(name)")], unique=True)
    op.create_index(
        "uq_repos_type_owner_lower_name", "repos", ["type", "owner_id", sa.text("lower(name)")], unique=True
    )


def downgrade() -> None:
    op.drop_index("uq_repos_type_owner_lower_name", table_name="repos")
    op.drop_index("uq_accounts_lower_name", table_name="accounts")
