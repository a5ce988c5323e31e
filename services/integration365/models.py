"""integration365's tables, in the PostgreSQL schema `integration365`."""
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.db import kernel_tables

metadata = sa.MetaData(schema="integration365")
outbox, processed_events = kernel_tables(metadata)

# One row per case handed to a partner (case id unique: a repeat escalation of a live
# hand-over is the same hand-over). `ref` is the escalation event's id: unique to this
# round, sent to the partner with the work order so that a retry can find what a lost
# answer created (see adapters.Open311Adapter).
handovers = sa.Table(
    "handovers", metadata,
    sa.Column("case_id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("partner", sa.String(64), nullable=False),
    sa.Column("ref", sa.String(64), nullable=False, unique=True),
    sa.Column("round", sa.Integer, nullable=False, server_default="1"),
    sa.Column("work_order", pg.JSONB, nullable=False),  # the work order as sent (domain.work_order)
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("remote_id", sa.String(200)),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_error", sa.Text),
    sa.Column("correlation_id", sa.String(100)),
    sa.Column("last_update_at", sa.DateTime(timezone=True)),  # the partner's time
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    sa.UniqueConstraint("partner", "remote_id"),
    sa.Index("ix_integration365_handovers_due", "next_attempt_at",
             postgresql_where=sa.text("state = 'pending'")),
)

# Every remote update we acted on, so each yields its events exactly once however often
# the poll sees it (polls overlap on purpose, see handlers.poll_updates).
remote_updates = sa.Table(
    "remote_updates", metadata,
    sa.Column("partner", sa.String(64), primary_key=True),
    sa.Column("update_id", sa.String(200), primary_key=True),
    sa.Column("case_id", pg.UUID(as_uuid=False), nullable=False),
    sa.Column("status", sa.String(100), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("seen_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
)

# Where the next poll of a partner's updates starts.
poll_cursors = sa.Table(
    "poll_cursors", metadata,
    sa.Column("partner", sa.String(64), primary_key=True),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
)
