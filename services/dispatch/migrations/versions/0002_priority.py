"""cases get a priority, set at screening; SLA hours depend on it

Revision ID: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
S = "dispatch"


def upgrade() -> None:
    op.add_column("cases", sa.Column("priority", sa.String(10), nullable=False,
                                     server_default="normal"), schema=S)


def downgrade() -> None:
    op.drop_column("cases", "priority", schema=S)
