"""Who saw a phone caller's number, when, for which case (issue #12, point 5)

A caller's number stays in intake (reports.reporter_phone); an operator may see it only
to call them back (回访), and each time it is shown is a row here, written in the
transaction that reads it. Kept as long as the report.

Revision ID: 0004
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0004"
down_revision = "0003"
S = "intake"


def upgrade() -> None:
    op.create_table(
        "caller_number_reveals",
        sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("report_id", pg.UUID(as_uuid=False), sa.ForeignKey(f"{S}.reports.id"),
                  nullable=False),
        sa.Column("case_id", pg.UUID(as_uuid=False), nullable=False),
        sa.Column("callback_id", pg.UUID(as_uuid=False), nullable=False),
        sa.Column("revealed_to", sa.String(64), nullable=False),
        sa.Column("revealed_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_index("caller_number_reveals_by_case", "caller_number_reveals", ["case_id"],
                    schema=S)


def downgrade() -> None:
    op.drop_table("caller_number_reveals", schema=S)
