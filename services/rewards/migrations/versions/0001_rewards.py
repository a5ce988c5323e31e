"""reward rules and their changes, reports and case handlers seen, rewards, the ledger,
payouts and their reversals

Revision ID: 0001
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.migrations import create_kernel_tables

revision = "0001"
down_revision = None
S = "rewards"


def upgrade() -> None:
    create_kernel_tables(S)
    op.create_table(
        "categories",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("rewarded_class", sa.String(20)),
        schema=S)
    op.create_table(
        "reward_rules",
        sa.Column("reward_class", sa.String(20), primary_key=True),
        sa.Column("priority", sa.String(10), primary_key=True),
        sa.Column("min_fen", sa.Integer, nullable=False),
        sa.Column("max_fen", sa.Integer, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("updated_by", sa.String(64)),
        sa.CheckConstraint("min_fen >= 500 AND min_fen <= max_fen AND max_fen <= 200000",
                           name="reward_rules_range"),
        schema=S)
    op.create_table(
        "rule_changes",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("reward_class", sa.String(20), nullable=False),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("before", pg.JSONB),
        sa.Column("after", pg.JSONB, nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        schema=S)
    op.create_table(
        "reports",
        sa.Column("report_id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("reporter_id", sa.String(64), nullable=False, index=True),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("case_id", pg.UUID(as_uuid=False)),
        sa.Column("community_id", sa.String(64)),
        sa.Column("valid", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=S)
    op.create_table(
        "case_handlers",
        sa.Column("case_id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("handler_id", sa.String(64), primary_key=True),
        schema=S)
    op.create_table(
        "rewards",
        sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("case_id", pg.UUID(as_uuid=False), nullable=False, unique=True),
        sa.Column("report_id", pg.UUID(as_uuid=False), nullable=False),
        sa.Column("resident_id", sa.String(64), nullable=False, index=True),
        sa.Column("category", sa.String(40), nullable=False),
        sa.Column("reward_class", sa.String(20), nullable=False),
        sa.Column("priority", sa.String(10), nullable=False),
        sa.Column("community_id", sa.String(64)),
        sa.Column("amount_fen", sa.Integer, nullable=False),
        sa.Column("min_fen", sa.Integer, nullable=False),
        sa.Column("max_fen", sa.Integer, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("proposed_by", sa.String(64), nullable=False),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("reason", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        schema=S)
    op.create_table(
        "ledger_entries",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("txn_id", pg.UUID(as_uuid=False), nullable=False, index=True),
        sa.Column("account", sa.String(80), nullable=False, index=True),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("reward_id", pg.UUID(as_uuid=False)),
        sa.Column("payout_id", pg.UUID(as_uuid=False)),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_fen <> 0", name="ledger_entries_nonzero"),
        schema=S)
    op.create_table(
        "payouts",
        sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("batch_id", pg.UUID(as_uuid=False), nullable=False, index=True),
        sa.Column("resident_id", sa.String(64), nullable=False, index=True),
        sa.Column("amount_fen", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("created_by", sa.String(64), nullable=False),
        sa.Column("approved_by", sa.String(64)),
        sa.Column("decided_by", sa.String(64)),
        sa.Column("note", sa.Text),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        sa.Column("decided_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("amount_fen > 0", name="payouts_positive"),
        schema=S)
    op.create_table(
        "payout_reversals",
        sa.Column("payout_id", pg.UUID(as_uuid=False), sa.ForeignKey(f"{S}.payouts.id"),
                  primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        schema=S)
    # What the ledger promises, kept by the database whatever the code does: entries are
    # never changed or removed, and a paid payout is never changed (it is reversed).
    op.execute(f"""
        CREATE FUNCTION {S}.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION '%: % refused (append-only; reverse with a new entry)',
                TG_TABLE_NAME, TG_OP;
        END $$;
        CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE
            ON {S}.ledger_entries FOR EACH ROW EXECUTE FUNCTION {S}.refuse_change();
        CREATE TRIGGER payouts_paid_never_change BEFORE UPDATE OR DELETE
            ON {S}.payouts FOR EACH ROW WHEN (OLD.status = 'paid')
            EXECUTE FUNCTION {S}.refuse_change();
    """)
