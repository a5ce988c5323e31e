"""dispatch's tables, in the PostgreSQL schema `dispatch`."""
import sqlalchemy as sa
from geoalchemy2 import Geography
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.db import kernel_tables

metadata = sa.MetaData(schema="dispatch")
outbox, processed_events = kernel_tables(metadata)

units = sa.Table(
    "units", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),  # community, department, social_org, ...
    sa.Column("name_zh", sa.String(100), nullable=False),
    sa.Column("name_en", sa.String(120), nullable=False),
    sa.Column("leader_id", sa.String(64)),
    # identity owns units; this is dispatch's copy, kept from identity's unit.changed
    # events (units.py): the newest version wins whatever order they arrive in.
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
)

communities = sa.Table(
    "communities", metadata,
    sa.Column("id", sa.String(64), sa.ForeignKey("dispatch.units.id"), primary_key=True),
    sa.Column("boundary", pg.JSONB, nullable=False),  # a GeoJSON Polygon, [lon, lat]
)

grids = sa.Table(
    "grids", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), sa.ForeignKey("dispatch.units.id"),
              nullable=False),
    sa.Column("name_zh", sa.String(100), nullable=False),
    sa.Column("leader_id", sa.String(64)),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),  # as units'
)

routing_rules = sa.Table(
    "routing_rules", metadata,
    sa.Column("id", sa.Integer, sa.Identity(), primary_key=True),
    sa.Column("category", sa.String(40), nullable=False),   # '*' = any
    sa.Column("community", sa.String(64), nullable=False),  # '*' = any
    sa.Column("unit_id", sa.String(64), sa.ForeignKey("dispatch.units.id"), nullable=False),
    sa.Column("reason_zh", sa.String(200), nullable=False),
    sa.Column("reason_en", sa.String(200), nullable=False),
    sa.UniqueConstraint("category", "community"),
)

category_sla = sa.Table(
    "category_sla", metadata,
    sa.Column("category", sa.String(40), primary_key=True),
    sa.Column("accept_hours", sa.Float, nullable=False),
    sa.Column("resolve_hours", sa.Float, nullable=False),
)

GEOG_EXPRESSION = "(st_setsrid(st_makepoint(lon, lat), 4326))::geography"
CURRENT_DUE_EXPRESSION = (
    "CASE WHEN status = 'assigned' THEN accept_due_at "
    "WHEN status IN ('accepted', 'escalated_external') THEN resolve_due_at END")

# 民生实事项目: what a leadership meeting (班子会) decided to do about its source cases
# (cases.project_id points here).
livelihood_projects = sa.Table(
    "livelihood_projects", metadata,
    sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("budget", sa.Numeric(14, 2), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("decision", sa.Text, nullable=False),
    sa.Column("decided_by", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
)

cases = sa.Table(
    "cases", metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("priority", sa.String(10), nullable=False, server_default="normal"),
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
    sa.Column("trail_head", sa.String(64), nullable=False),  # hash of the newest trail entry
    sa.Column("trail_length", sa.Integer, nullable=False),
    # 0003 (routes). The point as PostGIS sees it, computed from lat/lon by the database
    # (so every writer fills it, the batch open included); GiST-indexed for duplicates.
    sa.Column("geog", Geography("POINT", srid=4326, spatial_index=False),
              sa.Computed(GEOG_EXPRESSION, persisted=True)),
    sa.Column("suggestion_rule", pg.JSONB),  # which rule matched and why
    sa.Column("merged_into", pg.UUID(as_uuid=False)),
    sa.Column("return_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("return_reason", sa.Text),
    sa.Column("partner", sa.String(64)),
    sa.Column("wish_claimed_by", sa.String(64)),
    sa.Column("wish_claimed_at", sa.DateTime(timezone=True)),
    sa.Column("project_id", pg.UUID(as_uuid=False),
              sa.ForeignKey("dispatch.livelihood_projects.id")),
    # 0006 (the command center's list). The deadline running now, kept by the database
    # from the status and the two deadlines: "most urgent first" and "overdue" read it.
    sa.Column("current_due_at", sa.DateTime(timezone=True),
              sa.Computed(CURRENT_DUE_EXPRESSION, persisted=True)),
    sa.Index("ix_dispatch_cases_category", "category", "seq"),
    sa.Index("ix_dispatch_cases_community", "community_id", "seq"),
    sa.Index("ix_dispatch_cases_opened_at", "opened_at"),
    sa.Index("ix_dispatch_cases_current_due", "current_due_at", "seq"),
)

case_reports = sa.Table(
    "case_reports", metadata,
    # One case per report, enforced by the database too: the second line of defence
    # behind processed_events against a report opening two cases.
    sa.Column("report_id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("case_id", pg.UUID(as_uuid=False),
              sa.ForeignKey("dispatch.cases.id", deferrable=True, initially="DEFERRED"),
              nullable=False),
)

case_trail = sa.Table(
    "case_trail", metadata,
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
    # Open311's servicerequestupdates reads the trail by time, city-wide.
    sa.Index("ix_dispatch_case_trail_at", "at"),
)

# --- supervision (services/dispatch/sla.py, supervision.py) ---------------------------

# SLA hours per category x priority: data, seeded from the reference categories' hours
# times a factor per priority (sla.PRIORITY_FACTORS), editable by an admin.
sla_policies = sa.Table(
    "sla_policies", metadata,
    sa.Column("category", sa.String(40), primary_key=True),
    sa.Column("priority", sa.String(10), primary_key=True),
    sa.Column("accept_hours", sa.Float, nullable=False),
    sa.Column("resolve_hours", sa.Float, nullable=False),
    sa.Column("yellow_at", sa.Float, nullable=False, server_default="0.75"),
)

# One row per deadline a unit was given: running while stopped_at is null. The scan
# reads those whose next warning is due (next_warning_at); the report reads them all.
sla_clocks = sa.Table(
    "sla_clocks", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("case_id", pg.UUID(as_uuid=False), sa.ForeignKey("dispatch.cases.id"),
              nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),          # accept, resolve
    sa.Column("unit_id", sa.String(64), nullable=False),
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),  # unit got it
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("yellow_at", sa.Float, nullable=False),
    sa.Column("next_warning_at", sa.DateTime(timezone=True)),
    sa.Column("stopped_at", sa.DateTime(timezone=True)),
    sa.Column("stopped_by", sa.String(30)),                    # the action that stopped it
    sa.Index("ix_dispatch_sla_clocks_scan", "next_warning_at",
             postgresql_where=sa.text("stopped_at IS NULL")),
    sa.Index("ix_dispatch_sla_clocks_case", "case_id"),
    sa.Index("ix_dispatch_sla_clocks_unit", "unit_id", "assigned_at"),
    sa.Index("ux_dispatch_sla_clocks_running", "case_id", "kind", unique=True,
             postgresql_where=sa.text("stopped_at IS NULL")),
)

# Each warning once per (case, deadline kind, deadline value, rung): the unique key is
# what makes the scan safe on every instance at once and across restarts.
sla_warnings = sa.Table(
    "sla_warnings", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("case_id", pg.UUID(as_uuid=False), sa.ForeignKey("dispatch.cases.id"),
              nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("rung", sa.SmallInteger, nullable=False),
    sa.Column("level", sa.String(10), nullable=False),         # yellow, red, reminder
    sa.Column("unit_id", sa.String(64), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True), nullable=False),
    sa.UniqueConstraint("case_id", "kind", "due_at", "rung", name="uq_dispatch_sla_warning"),
    sa.Index("ix_dispatch_sla_warnings_unit", "unit_id", "sent_at"),
)

# What each person sees at GET /v1/inbox. A recipient is a unit (its handlers), a user
# (a unit's supervising leader) or a role (discipline: every red line).
inbox_items = sa.Table(
    "inbox_items", metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("id", pg.UUID(as_uuid=False), nullable=False, unique=True),
    sa.Column("recipient_kind", sa.String(10), nullable=False),  # unit, user, role
    sa.Column("recipient_id", sa.String(64), nullable=False),
    sa.Column("kind", sa.String(30), nullable=False),  # yellow_line, red_line, reminder, ...
    sa.Column("case_id", pg.UUID(as_uuid=False), nullable=False),
    sa.Column("message_zh", sa.Text, nullable=False),
    sa.Column("message_en", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("read_at", sa.DateTime(timezone=True)),
    sa.Index("ix_dispatch_inbox_recipient", "recipient_kind", "recipient_id", "seq"),
)

# Deadline extensions: a handler asks, an operator decides.
sla_extensions = sa.Table(
    "sla_extensions", metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("case_id", pg.UUID(as_uuid=False), sa.ForeignKey("dispatch.cases.id"),
              nullable=False),
    sa.Column("kind", sa.String(10), nullable=False),
    sa.Column("hours", sa.Float, nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("requested_by", sa.String(64), nullable=False),
    sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(10), nullable=False),  # pending, approved, refused
    sa.Column("decided_by", sa.String(64)),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("note", sa.Text),
    sa.Index("ux_dispatch_sla_extensions_pending", "case_id", unique=True,
             postgresql_where=sa.text("status = 'pending'")),
)

# The callback (回访) queue: a sample of closed cases for staff to phone.
callbacks = sa.Table(
    "callbacks", metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("case_id", pg.UUID(as_uuid=False), sa.ForeignKey("dispatch.cases.id"),
              nullable=False),
    sa.Column("queued_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(12), nullable=False),  # pending, satisfied, unsatisfied
    sa.Column("recorded_by", sa.String(64)),
    sa.Column("recorded_at", sa.DateTime(timezone=True)),
    sa.Column("note", sa.Text),
    sa.Index("ux_dispatch_callbacks_pending", "case_id", unique=True,
             postgresql_where=sa.text("status = 'pending'")),
)
