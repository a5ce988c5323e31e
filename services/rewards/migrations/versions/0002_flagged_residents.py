"""residents flagged by an operator: their rewards are held for review

Revision ID: 0002
"""
import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
S = "rewards"


def upgrade() -> None:
    op.create_table(
        "flagged_residents",
        sa.Column("resident_id", sa.String(64), primary_key=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("flagged_by", sa.String(64), nullable=False),
        sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
        schema=S)
