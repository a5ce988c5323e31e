"""Open311: attribute definitions per category, a report's answers to them, and an index
for listing reports by when they were submitted

Revision ID: 0002
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0002"
down_revision = "0001"
S = "intake"


def upgrade() -> None:
    op.add_column("categories", sa.Column("attributes", pg.JSONB, nullable=False,
                                          server_default=sa.text("'[]'::jsonb")), schema=S)
    op.add_column("reports", sa.Column("attributes", pg.JSONB), schema=S)
    # GET /open311/v2/requests lists a date range (90 days by default), newest first.
    op.create_index("ix_intake_reports_submitted_at", "reports", ["submitted_at", "seq"],
                    schema=S)


def downgrade() -> None:
    op.drop_index("ix_intake_reports_submitted_at", "reports", schema=S)
    op.drop_column("reports", "attributes", schema=S)
    op.drop_column("categories", "attributes", schema=S)
