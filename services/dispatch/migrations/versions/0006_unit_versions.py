"""units and grids carry the version of identity's unit.changed / grid.changed events

Revision ID: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
S = "dispatch"


def upgrade() -> None:
    for table in ("units", "grids"):
        op.add_column(table, sa.Column("version", sa.Integer, nullable=False,
                                       server_default="0"), schema=S)


def downgrade() -> None:
    for table in ("units", "grids"):
        op.drop_column(table, "version", schema=S)
