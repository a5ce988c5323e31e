"""accounts: one-time SMS codes, their outbox, and the audit of account changes

Revision ID: 0005
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    op.create_table(
        "sms_codes",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("purpose", sa.String(20), nullable=False),
        sa.Column("code_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        sa.Column("burned_at", sa.DateTime(timezone=True)),
        schema="identity",
    )
    op.create_index("sms_codes_by_phone", "sms_codes", ["phone", "created_at"],
                    schema="identity")
    op.create_table(
        "sms_outbox",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("phone", sa.String(20), nullable=False),
        sa.Column("code", sa.String(6)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("tries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_try_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("last_error", sa.String(200)),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.Column("provider_id", sa.String(64)),
        schema="identity",
    )
    op.create_index("sms_outbox_unsent", "sms_outbox", ["next_try_at"], schema="identity",
                    postgresql_where=sa.text("sent_at IS NULL"))
    op.create_table(
        "account_changes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("user_id", sa.String(64), nullable=False),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("what", sa.String(40), nullable=False),
        sa.Column("changes", pg.JSONB, nullable=False),
        schema="identity",
    )
    op.create_index("ix_identity_account_changes_user_id", "account_changes", ["user_id"],
                    schema="identity")


def downgrade() -> None:
    op.drop_table("account_changes", schema="identity")
    op.drop_table("sms_outbox", schema="identity")
    op.drop_table("sms_codes", schema="identity")
