"""rewards' tables, in the PostgreSQL schema `rewards`."""
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql as pg

from minqing_kernel.db import kernel_tables

metadata = sa.MetaData(schema="rewards")
outbox, processed_events = kernel_tables(metadata)

# The reward class of each category, from the reference file (refdata.py).
categories = sa.Table(
    "categories", metadata,
    sa.Column("code", sa.String(40), primary_key=True),
    sa.Column("rewarded_class", sa.String(20)),
)

# Per reward class x case priority: the amount range, in fen (5-2,000 yuan). Data,
# seeded from the reference categories, edited by admins (rule_changes keeps who, when).
reward_rules = sa.Table(
    "reward_rules", metadata,
    sa.Column("reward_class", sa.String(20), primary_key=True),
    sa.Column("priority", sa.String(10), primary_key=True),
    sa.Column("min_fen", sa.Integer, nullable=False),
    sa.Column("max_fen", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False,
              server_default=sa.func.now()),
    sa.Column("updated_by", sa.String(64)),
    sa.CheckConstraint("min_fen >= 500 AND min_fen <= max_fen AND max_fen <= 200000",
                       name="reward_rules_range"),
)

rule_changes = sa.Table(
    "rule_changes", metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("reward_class", sa.String(20), nullable=False),
    sa.Column("priority", sa.String(10), nullable=False),
    sa.Column("before", pg.JSONB),
    sa.Column("after", pg.JSONB, nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

# Who filed each report, learned from intake's INTERNAL report.received (never from
# intake's tables); `valid` and `community_id` once its case closed.
reports = sa.Table(
    "reports", metadata,
    sa.Column("report_id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("reporter_id", sa.String(64), nullable=False, index=True),
    sa.Column("channel", sa.String(20), nullable=False),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("submitted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("case_id", pg.UUID(as_uuid=False)),
    sa.Column("community_id", sa.String(64)),
    sa.Column("valid", sa.Boolean, nullable=False, server_default=sa.false()),
)

# Who worked each case (accepted, resolved, closed it): nobody is rewarded for those.
case_handlers = sa.Table(
    "case_handlers", metadata,
    sa.Column("case_id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("handler_id", sa.String(64), primary_key=True),
)

# One reward per case at most (case_id unique, written in the consumer's transaction:
# a redelivered case.closed never proposes, nor pays, twice).
rewards = sa.Table(
    "rewards", metadata,
    sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("case_id", pg.UUID(as_uuid=False), nullable=False, unique=True),
    sa.Column("report_id", pg.UUID(as_uuid=False), nullable=False),
    sa.Column("resident_id", sa.String(64), nullable=False, index=True),
    sa.Column("category", sa.String(40), nullable=False),
    sa.Column("reward_class", sa.String(20), nullable=False),
    sa.Column("priority", sa.String(10), nullable=False),
    sa.Column("community_id", sa.String(64)),
    sa.Column("amount_fen", sa.Integer, nullable=False),
    sa.Column("min_fen", sa.Integer, nullable=False),
    sa.Column("max_fen", sa.Integer, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("proposed_by", sa.String(64), nullable=False),
    sa.Column("decided_by", sa.String(64)),
    sa.Column("reason", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
)

# The ledger: append-only (a trigger refuses UPDATE and DELETE, see the migration);
# each txn_id's amounts sum to zero (domain.py).
ledger_entries = sa.Table(
    "ledger_entries", metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("txn_id", pg.UUID(as_uuid=False), nullable=False, index=True),
    sa.Column("account", sa.String(80), nullable=False, index=True),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("reward_id", pg.UUID(as_uuid=False)),
    sa.Column("payout_id", pg.UUID(as_uuid=False)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.CheckConstraint("amount_fen <> 0", name="ledger_entries_nonzero"),
)

# Payouts for finance: pending -> approved -> paid (or refused back to the balance). A
# paid row is never updated (a trigger refuses it); a reversal is a row of its own.
payouts = sa.Table(
    "payouts", metadata,
    sa.Column("id", pg.UUID(as_uuid=False), primary_key=True),
    sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False, unique=True),
    sa.Column("batch_id", pg.UUID(as_uuid=False), nullable=False, index=True),
    sa.Column("resident_id", sa.String(64), nullable=False, index=True),
    sa.Column("amount_fen", sa.BigInteger, nullable=False),
    sa.Column("status", sa.String(10), nullable=False),
    sa.Column("created_by", sa.String(64), nullable=False),
    sa.Column("approved_by", sa.String(64)),
    sa.Column("decided_by", sa.String(64)),
    sa.Column("note", sa.Text),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("approved_at", sa.DateTime(timezone=True)),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.CheckConstraint("amount_fen > 0", name="payouts_positive"),
)

payout_reversals = sa.Table(
    "payout_reversals", metadata,
    sa.Column("payout_id", pg.UUID(as_uuid=False), sa.ForeignKey("rewards.payouts.id"),
              primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("actor_id", sa.String(64), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

# Residents an operator flagged (suspected abuse): their rewards are held, not approved,
# until a leader or an admin has reviewed and lifted the flag.
flagged_residents = sa.Table(
    "flagged_residents", metadata,
    sa.Column("resident_id", sa.String(64), primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("flagged_by", sa.String(64), nullable=False),
    sa.Column("flagged_at", sa.DateTime(timezone=True), nullable=False),
)
