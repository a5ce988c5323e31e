"""intake's tables, in the PostgreSQL schema `intake`."""
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.db import kernel_tables

metadata = sa.MetaData(schema="intake")
outbox, processed_events = kernel_tables(metadata)

categories = sa.Table(
    "categories", metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("group", sa.String(20), nullable=False),
    sa.Column("name_zh", sa.String(60), nullable=False),
    sa.Column("name_en", sa.String(100), nullable=False),
    sa.Column("rewarded_class", sa.String(20)),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
    # Open311 service-definition attributes: [{code, datatype, required, ...}], see
    # domain.check_attributes.
    sa.Column("attributes", pg.JSONB, nullable=False, server_default=sa.text("'[]'::jsonb")),
)

service_areas = sa.Table(
    "service_areas", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name_zh", sa.String(60), nullable=False),
    sa.Column("boundary", pg.JSONB, nullable=False),  # a GeoJSON Polygon, [lon, lat]
)

reports = sa.Table(
    "reports", metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("reporter_id", sa.String(64), nullable=False),
    sa.Column("reporter_phone", sa.String(20)),
    sa.Column("submitted_by", sa.String(64), nullable=False),
    sa.Column("channel", sa.String(10), nullable=False),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("description", sa.Text, nullable=False),
    sa.Column("address", sa.String(200)),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("attachments", pg.JSONB, nullable=False),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attributes", pg.JSONB),  # answers to the category's attributes (Open311)
)

# Upload tickets (POST /v1/uploads): who may attach the object at `key`, and what was
# declared for it. The key itself is random and says nothing about the owner.
uploads = sa.Table(
    "uploads", metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("owner_id", sa.String(64), nullable=False),
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),  # declared: the most the store takes
    sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

# Accepted attachments: the copy of an upload that a report (or a case action) points at.
# One row per upload at most (unique upload_key): that is what makes a ticket single-use,
# and it is written in the same transaction as the report, so a report and its claim on
# the upload exist together or not at all. An upload's state follows: issued (no row
# here), attached (a row), and its ticket expired after expires_at.
attachments = sa.Table(
    "attachments", metadata,
    sa.Column("key", sa.String(80), primary_key=True),
    sa.Column("upload_key", sa.String(80), sa.ForeignKey("intake.uploads.key"),
              nullable=False, unique=True),
    sa.Column("used_for", sa.String(100), nullable=False),  # report:<id> | case:<id> | ...
    sa.Column("content_type", sa.String(100), nullable=False),
    sa.Column("size", sa.BigInteger, nullable=False),
    sa.Column("etag", sa.String(100)),
    sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
)

# Each time an operator was shown a phone caller's number for a callback (回访): who, when,
# for which case and callback (issue #12, point 5). Written with the read that shows it.
caller_number_reveals = sa.Table(
    "caller_number_reveals", metadata,
    sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("report_id", pg.UUID(as_uuid=False), sa.ForeignKey("intake.reports.id"),
              nullable=False),
    sa.Column("case_id", pg.UUID(as_uuid=False), nullable=False),
    sa.Column("callback_id", pg.UUID(as_uuid=False), nullable=False),
    sa.Column("revealed_to", sa.String(64), nullable=False),
    sa.Column("revealed_at", sa.DateTime(timezone=True), nullable=False),
    sa.Index("caller_number_reveals_by_case", "case_id"),
)
