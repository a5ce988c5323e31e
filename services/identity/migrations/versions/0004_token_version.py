"""accounts' current state for tokens: users.token_version and users.active; sign-in
failures are no longer counted per account (users.failed_logins goes), and
users.locked_until now means a lock the command center set

Revision ID: 0004
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    op.add_column("users", sa.Column("token_version", sa.Integer, nullable=False,
                                     server_default="0"), schema="identity")
    op.add_column("users", sa.Column("active", sa.Boolean, nullable=False,
                                     server_default=sa.true()), schema="identity")
    # Locks set by the old per-account failure count were a stranger's doing: lifted.
    op.execute("UPDATE identity.users SET locked_until = NULL")
    op.drop_column("users", "failed_logins", schema="identity")


def downgrade() -> None:
    op.add_column("users", sa.Column("failed_logins", sa.Integer, nullable=False,
                                     server_default="0"), schema="identity")
    op.drop_column("users", "active", schema="identity")
    op.drop_column("users", "token_version", schema="identity")
