"""units and grids, owned by identity and managed by admins, with their audit

Revision ID: 0006
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql as pg

revision = "0006"
down_revision = "0005"
S = "identity"


def upgrade() -> None:
    op.create_table(
        "units",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name_zh", sa.String(100), nullable=False),
        sa.Column("name_en", sa.String(120), nullable=False),
        sa.Column("leader_id", sa.String(64)),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        schema=S,
    )
    op.create_table(
        "grids",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("community_id", sa.String(64), sa.ForeignKey("identity.units.id"),
                  nullable=False),
        sa.Column("name_zh", sa.String(100), nullable=False),
        sa.Column("leader_id", sa.String(64)),
        sa.Column("version", sa.Integer, nullable=False, server_default="0"),
        schema=S,
    )
    op.create_index("ix_identity_grids_community_id", "grids", ["community_id"], schema=S)
    op.create_table(
        "unit_changes",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("unit_id", sa.String(64), nullable=False),
        sa.Column("grid_id", sa.String(64)),
        sa.Column("actor_id", sa.String(64), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.func.now()),
        sa.Column("what", sa.String(40), nullable=False),
        sa.Column("changes", pg.JSONB, nullable=False),
        schema=S,
    )
    op.create_index("ix_identity_unit_changes_unit_id", "unit_changes", ["unit_id"], schema=S)


def downgrade() -> None:
    op.drop_table("unit_changes", schema=S)
    op.drop_table("grids", schema=S)
    op.drop_table("units", schema=S)
