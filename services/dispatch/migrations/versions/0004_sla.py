"""SLA clocks by priority, warnings, inbox, extensions, callbacks

Revision ID: 0004
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0004"
down_revision = "0003"
S = "dispatch"


def upgrade() -> None:
    op.create_table(
        "sla_policies",
        sa.Column("category", sa.String(40), primary_key=True),
        sa.Column("priority", sa.String(10), primary_key=True),
        sa.Column("accept_hours", sa.Float, nullable=False),
        sa.Column("resolve_hours", sa.Float, nullable=False),
        sa.Column("yellow_at", sa.Float, nullable=False, server_default="0.75"),
        schema=S,
    )
    op.create_table(
        "sla_clocks",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("case_id", pg.UUID(as_uuid=False), sa.ForeignKey("dispatch.cases.id"),
                  nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("yellow_at", sa.Float, nullable=False),
        sa.Column("next_warning_at", sa.DateTime(timezone=True)),
        sa.Column("stopped_at", sa.DateTime(timezone=True)),
        sa.Column("stopped_by", sa.String(30)),
        schema=S,
    )
    op.create_index("ix_dispatch_sla_clocks_scan", "sla_clocks", ["next_warning_at"],
                    schema=S, postgresql_where=sa.text("stopped_at IS NULL"))
    op.create_index("ix_dispatch_sla_clocks_case", "sla_clocks", ["case_id"], schema=S)
    op.create_index("ix_dispatch_sla_clocks_unit", "sla_clocks", ["unit_id", "assigned_at"],
                    schema=S)
    op.create_index("ux_dispatch_sla_clocks_running", "sla_clocks", ["case_id", "kind"],
                    unique=True, schema=S, postgresql_where=sa.text("stopped_at IS NULL"))
    op.create_table(
        "sla_warnings",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("case_id", pg.UUID(as_uuid=False), sa.ForeignKey("dispatch.cases.id"),
                  nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rung", sa.SmallInteger, nullable=False),
        sa.Column("level", sa.String(10), nullable=False),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("case_id", "kind", "due_at", "rung", name="uq_dispatch_sla_warning"),
        schema=S,
    )
    op.create_index("ix_dispatch_sla_warnings_unit", "sla_warnings", ["unit_id", "sent_at"],
                    schema=S)
    op.create_table(
        "inbox_items",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("id", pg.UUID(as_uuid=False), nullable=False, unique=True),
        sa.Column("recipient_kind", sa.String(10), nullable=False),
        sa.Column("recipient_id", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(30), nullable=False),
        sa.Column("case_id", pg.UUID(as_uuid=False), nullable=False),
        sa.Column("message_zh", sa.Text, nullable=False),
        sa.Column("message_en", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("read_at", sa.DateTime(timezone=True)),
        schema=S,
    )
    op.create_index("ix_dispatch_inbox_recipient", "inbox_items",
                    ["recipient_kind", "recipient_id", "seq"], schema=S)
    op.create_table(
        "sla_extensions",
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("case_id", pg.UUID(as_uuid=False), sa.ForeignKey("dispatch.cases.id"),
                  nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("hours", sa.Float, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.Column("note", sa.Text),
        schema=S,
    )
    op.create_index("ux_dispatch_sla_extensions_pending", "sla_extensions", ["case_id"],
                    unique=True, schema=S, postgresql_where=sa.text("status = 'pending'"))
    op.create_table(
        "callbacks",
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("case_id", pg.UUID(as_uuid=False), sa.ForeignKey("dispatch.cases.id"),
                  nullable=False),
        sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("recorded_by", sa.String(64)),
        sa.Column("recorded_at", sa.DateTime(timezone=True)),
        sa.Column("note", sa.Text),
        schema=S,
    )
    op.create_index("ux_dispatch_callbacks_pending", "callbacks", ["case_id"], unique=True,
                    schema=S, postgresql_where=sa.text("status = 'pending'"))


def downgrade() -> None:
    for table in ("callbacks", "sla_extensions", "inbox_items", "sla_warnings", "sla_clocks",
                  "sla_policies"):
        op.drop_table(table, schema=S)
