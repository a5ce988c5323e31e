"""categories, service areas, reports, and the kernel tables

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.migrations import create_kernel_tables

revision = "0001"
down_revision = None
S = "intake"


def upgrade() -> None:
    create_kernel_tables(S)
    op.create_table(
        "categories",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("group", sa.String(20), nullable=False),
        sa.Column("name_zh", sa.String(60), nullable=False),
        sa.Column("name_en", sa.String(100), nullable=False),
        sa.Column("rewarded_class", sa.String(20)),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
        schema=S,
    )
    op.create_table(
        "service_areas",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name_zh", sa.String(60), nullable=False),
        sa.Column("boundary", pg.JSONB, nullable=False),
        schema=S,
    )
    op.create_table(
        "reports",
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("reporter_id", sa.String(64), nullable=False),
        sa.Column("reporter_phone", sa.String(20)),
        sa.Column("submitted_by", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("address", sa.String(200)),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("attachments", pg.JSONB, nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("ix_intake_reports_reporter_id", "reports", ["reporter_id"], schema=S)


def downgrade() -> None:
    for table in ("reports", "service_areas", "categories", "processed_events", "outbox"):
        op.drop_table(table, schema=S)
