"""units, communities, grids, routing rules, SLA, cases, their reports and trail

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.migrations import create_kernel_tables

revision = "0001"
down_revision = None
S = "dispatch"


def upgrade() -> None:
    create_kernel_tables(S)
    op.create_table(
        "units",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name_zh", sa.String(100), nullable=False),
        sa.Column("name_en", sa.String(120), nullable=False),
        sa.Column("leader_id", sa.String(64)),
        schema=S,
    )
    op.create_table(
        "communities",
        sa.Column("id", sa.String(64), sa.ForeignKey("dispatch.units.id"), primary_key=True),
        sa.Column("boundary", pg.JSONB, nullable=False),
        schema=S,
    )
    op.create_table(
        "grids",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("community_id", sa.String(64), sa.ForeignKey("dispatch.units.id"),
                  nullable=False),
        sa.Column("name_zh", sa.String(100), nullable=False),
        sa.Column("leader_id", sa.String(64)),
        schema=S,
    )
    op.create_table(
        "routing_rules",
        sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
        sa.Column("category", sa.String(40), nullable=False), 
        sa.Column("community", sa.String(64), nullable=False),
        sa.Column("unit_id", sa.String(64), sa.ForeignKey("dispatch.units.id"), nullable=False),
        sa.Column("reason_zh", sa.String(200), nullable=False),
        sa.Column("reason_en", sa.String(200), nullable=False),
        sa.UniqueConstraint("category", "community"),
        schema=S,
    )
    op.create_table(
        "category_sla",
        sa.Column("category", sa.String(40), primary_key=True),
        sa.Column("accept_hours", sa.Float, nullable=False),
        sa.Column("resolve_hours", sa.Float, nullable=False),
        schema=S,
    )
    op.create_table(
        "cases",
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("address", sa.String(200)),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
        sa.Column("channel", sa.String(10), nullable=False),
        sa.Column("attachments", pg.JSONB, nullable=False),
        sa.Column("reporter_ids", pg.ARRAY(sa.String(64)), nullable=False),
        sa.Column("report_ids", pg.ARRAY(pg.UUID(as_uuid=False)), nullable=False),
        sa.Column("community_id", sa.String(64)),
        sa.Column("suggested_unit_id", sa.String(64)),
        sa.Column("suggestion_reason_zh", sa.String(200)),
        sa.Column("suggestion_reason_en", sa.String(200)),
        sa.Column("unit_id", sa.String(64)),
        sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("accept_due_at", sa.DateTime(timezone=True)),
        sa.Column("resolve_due_at", sa.DateTime(timezone=True)),
        sa.Column("result", sa.Text),
        sa.Column("result_attachments", pg.JSONB),
        sa.Column("rating", sa.SmallInteger),
        sa.Column("feedback", sa.Text),
        sa.Column("trail_head", sa.String(64), nullable=False),
        sa.Column("trail_length", sa.Integer, nullable=False),
        schema=S,
    )
    op.create_table(
        "case_reports",
        sa.Column("report_id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("case_id", pg.UUID(as_uuid=False),
                  sa.ForeignKey("dispatch.cases.id", deferrable=True, initially="DEFERRED"),
                  nullable=False),
        schema=S,
    )
    op.create_table(
        "case_trail",
        sa.Column("case_id", pg.UUID(as_uuid=False), sa.ForeignKey("dispatch.cases.id"),
                  primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("actor_role", sa.String(20), nullable=False),
        sa.Column("action", sa.String(30), nullable=False),
        sa.Column("from_status", sa.String(20)),
        sa.Column("to_status", sa.String(20), nullable=False),
        sa.Column("unit_id", sa.String(64)),
        sa.Column("note", sa.Text),
        sa.Column("attachments", pg.JSONB, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        schema=S,
    )
    op.create_index("ix_dispatch_cases_status", "cases", ["status", "seq"], schema=S)
    op.create_index("ix_dispatch_cases_unit", "cases", ["unit_id", "seq"], schema=S)
    op.create_index("ix_dispatch_cases_reporters", "cases", ["reporter_ids"], schema=S,
                    postgresql_using="gin")
    # 留痕: the trail is append-only in the database itself, whoever connects.
    op.execute("""
        CREATE FUNCTION dispatch.refuse_trail_change() RETURNS trigger AS $$
        BEGIN
            RAISE EXCEPTION 'case_trail is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END $$ LANGUAGE plpgsql""")
    op.execute("""CREATE TRIGGER case_trail_append_only BEFORE UPDATE OR DELETE
                  ON dispatch.case_trail FOR EACH ROW
                  EXECUTE FUNCTION dispatch.refuse_trail_change()""")
    op.execute("""CREATE TRIGGER case_trail_no_truncate BEFORE TRUNCATE
                  ON dispatch.case_trail FOR EACH STATEMENT
                  EXECUTE FUNCTION dispatch.refuse_trail_change()""")


def downgrade() -> None:
    op.execute("DROP TRIGGER case_trail_no_truncate ON dispatch.case_trail")
    op.execute("DROP TRIGGER case_trail_append_only ON dispatch.case_trail")
    op.execute("DROP FUNCTION dispatch.refuse_trail_change()")
    for table in ("case_trail", "case_reports", "cases", "category_sla", "routing_rules",
                  "grids", "communities", "units", "processed_events", "outbox"):
        op.drop_table(table, schema=S)
