"""screening routes: merge, return, transfer, external linkage, leadership, micro-wish

Revision ID: 0003
"""
revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
