"""SLA clocks by priority, warnings, inbox, callbacks

Revision ID: 0004
"""
revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
