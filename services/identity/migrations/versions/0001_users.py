"""users, and the kernel's outbox and processed-events tables

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.migrations import create_kernel_tables

revision = "0001"
down_revision = None


def upgrade() -> None:
    create_kernel_tables("identity")
    op.create_table(
        "users",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("username", sa.String(64), nullable=False, unique=True),
        sa.Column("display_name", sa.String(100), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("roles", pg.ARRAY(sa.String(20)), nullable=False),
        sa.Column("unit_id", sa.String(64)),
        sa.Column("phone", sa.String(20)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        schema="identity",
    )


def downgrade() -> None:
    op.drop_table("users", schema="identity")
    op.drop_table("processed_events", schema="identity")
    op.drop_table("outbox", schema="identity")
