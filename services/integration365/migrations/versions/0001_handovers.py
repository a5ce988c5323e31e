"""hand-overs to partners, the remote updates acted on, poll cursors

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.migrations import create_kernel_tables

revision = "0001"
down_revision = None
S = "integration365"


def upgrade() -> None:
    create_kernel_tables(S)
    op.create_table(
        "handovers",
        sa.Column("case_id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("ref", sa.String(64), nullable=False, unique=True),
        sa.Column("round", sa.Integer, nullable=False, server_default="1"),
        sa.Column("work_order", pg.JSONB, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("remote_id", sa.String(200)),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text),
        sa.Column("correlation_id", sa.String(100)),
        sa.Column("last_update_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.UniqueConstraint("partner", "remote_id"),
        schema=S,
    )
    op.create_index("ix_integration365_handovers_due", "handovers", ["next_attempt_at"],
                    schema=S, postgresql_where=sa.text("state = 'pending'"))
    op.create_table(
        "remote_updates",
        sa.Column("partner", sa.String(64), primary_key=True),
        sa.Column("update_id", sa.String(200), primary_key=True),
        sa.Column("case_id", pg.UUID(as_uuid=False), nullable=False),
        sa.Column("status", sa.String(100), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        schema=S,
    )
    op.create_table(
        "poll_cursors",
        sa.Column("partner", sa.String(64), primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    for table in ("poll_cursors", "remote_updates", "handovers", "processed_events",
                  "outbox"):
        op.drop_table(table, schema=S)
