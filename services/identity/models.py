"""identity's tables, in the PostgreSQL schema `identity`."""
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.db import kernel_tables

metadata = sa.MetaData(schema="identity")
outbox, processed_events = kernel_tables(metadata)

users = sa.Table(
    "users", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), nullable=False, unique=True),
    sa.Column("display_name", sa.String(100), nullable=False),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("roles", pg.ARRAY(sa.String(20)), nullable=False),
    sa.Column("unit_id", sa.String(64)),
    sa.Column("phone", sa.String(20)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    # Locked by the command center until then (handlers.lock_account); sign-in failures
    # no longer lock anyone (see gateway/signin.py).
    sa.Column("locked_until", sa.DateTime(timezone=True)),
    # Every token carries the version it was issued at; bumping it revokes them all
    # (domain.token_state). A deactivated account keeps its row, and its trail.
    sa.Column("token_version", sa.Integer, nullable=False, server_default="0"),
    sa.Column("active", sa.Boolean, nullable=False, server_default=sa.true()),
)

# Open311 partners' API keys (POST /open311/v2/requests). Only a hash of each key is kept:
# the key itself is shown once, when it is issued.
api_keys = sa.Table(
    "api_keys", metadata,
    sa.Column("id", sa.String(32), primary_key=True),  # names the key in logs, not secret
    sa.Column("partner_id", sa.String(64), sa.ForeignKey("identity.users.id"),
              nullable=False),
    sa.Column("name", sa.String(100), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

# One-time SMS codes (services/identity/codes.py). Only a keyed hash of each code is kept;
# a row is live until it expires, is used, or its tries run out (burned_at).
sms_codes = sa.Table(
    "sms_codes", metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("phone", sa.String(20), nullable=False),
    sa.Column("purpose", sa.String(20), nullable=False),
    sa.Column("code_hash", sa.String(64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("used_at", sa.DateTime(timezone=True)),
    sa.Column("burned_at", sa.DateTime(timezone=True)),
    sa.Index("sms_codes_by_phone", "phone", "created_at"),
)

# The SMS outbox: written in the same transaction as the code, sent afterwards by the
# relay (service.send_sms). The code is kept here in clear only until it is sent. The
# row's id is the message's OutId, so a resend after a crash is the same message.
sms_outbox = sa.Table(
    "sms_outbox", metadata,
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
    sa.Index("sms_outbox_unsent", "next_try_at", postgresql_where=sa.text("sent_at IS NULL")),
)

# Who changed an account, when, and what (staff management, password resets, sign-ups).
account_changes = sa.Table(
    "account_changes", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("user_id", sa.String(64), nullable=False, index=True),
    sa.Column("actor_id", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("what", sa.String(40), nullable=False),
    sa.Column("changes", pg.JSONB, nullable=False),
)

# Units (单位: communities, departments, social organisations, volunteer teams, partners)
# and the grids (网格) of each community: identity owns them (ARCHITECTURE), seeded from
# reference/wangjiang.yaml on first load and managed by admins after (units.py). `version`
# goes up with every change and travels in the unit.changed / grid.changed events, so a
# consumer keeps the newest state whatever order the events reach it in.
units = sa.Table(
    "units", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("name_zh", sa.String(100), nullable=False),
    sa.Column("name_en", sa.String(120), nullable=False),
    sa.Column("leader_id", sa.String(64)),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
)

grids = sa.Table(
    "grids", metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("community_id", sa.String(64), sa.ForeignKey("identity.units.id"),
              nullable=False, index=True),
    sa.Column("name_zh", sa.String(100), nullable=False),
    sa.Column("leader_id", sa.String(64)),
    sa.Column("version", sa.Integer, nullable=False, server_default="0"),
)

# Who changed a unit or one of its grids, when, and what (as account_changes for people).
# A grid's changes are kept under its community (unit_id) with the grid's id.
unit_changes = sa.Table(
    "unit_changes", metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("unit_id", sa.String(64), nullable=False, index=True),
    sa.Column("grid_id", sa.String(64)),
    sa.Column("actor_id", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("what", sa.String(40), nullable=False),
    sa.Column("changes", pg.JSONB, nullable=False),
)
