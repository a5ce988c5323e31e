"""sign-in lockout: users.failed_logins and users.locked_until

Revision ID: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("users", sa.Column("failed_logins", sa.Integer, nullable=False,
                                     server_default="0"), schema="identity")
    op.add_column("users", sa.Column("locked_until", sa.DateTime(timezone=True)),
                  schema="identity")


def downgrade() -> None:
    op.drop_column("users", "locked_until", schema="identity")
    op.drop_column("users", "failed_logins", schema="identity")
