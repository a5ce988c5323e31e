"""the trail by time, for Open311's servicerequestupdates (every case's steps since T)

Revision ID: 0005
"""
from alembic import op

revision = "0005"
down_revision = "0004"
S = "dispatch"


def upgrade() -> None:
    op.create_index("ix_dispatch_case_trail_at", "case_trail", ["at"], schema=S)


def downgrade() -> None:
    op.drop_index("ix_dispatch_case_trail_at", "case_trail", schema=S)
