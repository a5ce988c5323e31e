"""screening routes: merge, return, transfer, external linkage, leadership, micro-wish

PostGIS for duplicate candidates (a generated geography point with a GiST index),
what a return, an escalation or a wish needs on the case, and livelihood projects.

Revision ID: 0003
"""
import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography
from sqlalchemy.dialects import postgresql as pg

revision = "0003"
down_revision = "0002"
S = "dispatch"
GEOG_EXPRESSION = "(st_setsrid(st_makepoint(lon, lat), 4326))::geography"


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_table(
        "livelihood_projects",
        sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("budget", sa.Numeric(14, 2), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("decision", sa.Text, nullable=False),
        sa.Column("decided_by", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    # Existing rows get their point computed as the column is added.
    op.add_column("cases", sa.Column(
        "geog", Geography("POINT", srid=4326, spatial_index=False),
        sa.Computed(GEOG_EXPRESSION, persisted=True)), schema=S)
    op.add_column("cases", sa.Column("suggestion_rule", pg.JSONB), schema=S)
    op.add_column("cases", sa.Column("merged_into", pg.UUID(as_uuid=False)), schema=S)
    op.add_column("cases", sa.Column("return_count", sa.Integer, nullable=False,
                                     server_default="0"), schema=S)
    op.add_column("cases", sa.Column("return_reason", sa.Text), schema=S)
    op.add_column("cases", sa.Column("partner", sa.String(64)), schema=S)
    op.add_column("cases", sa.Column("wish_claimed_by", sa.String(64)), schema=S)
    op.add_column("cases", sa.Column("wish_claimed_at", sa.DateTime(timezone=True)), schema=S)
    op.add_column("cases", sa.Column("project_id", pg.UUID(as_uuid=False), sa.ForeignKey(
        "dispatch.livelihood_projects.id", name="cases_project_id_fkey")), schema=S)
    op.create_index("ix_dispatch_cases_geog", "cases", ["geog"], schema=S,
                    postgresql_using="gist")
    op.create_index("ix_dispatch_cases_project", "cases", ["project_id"], schema=S)


def downgrade() -> None:
    op.drop_index("ix_dispatch_cases_project", "cases", schema=S)
    op.drop_index("ix_dispatch_cases_geog", "cases", schema=S)
    for column in ("project_id", "wish_claimed_at", "wish_claimed_by", "partner",
                   "return_reason", "return_count", "merged_into", "suggestion_rule", "geog"):
        op.drop_column("cases", column, schema=S)
    op.drop_table("livelihood_projects", schema=S)
    # The postgis extension stays: other schemas may use it.
