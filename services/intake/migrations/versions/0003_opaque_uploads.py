"""Upload tickets and accepted attachments: ownership in a table, not in the object key

Before this, an upload's key was `uploads/<username>/<uuid>.<ext>` and ownership was
read from that prefix, which put the reporter's username in front of everyone who saw
the key (issue #10, finding 1). From here keys are random and these tables say whose
they are. Reports already submitted keep their old keys (history is not rewritten; the
objects stay where they are and stay readable by key); an old-style key that was issued
but not yet attached has no row here and is refused: the phone uploads it again.

Revision ID: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
S = "intake"


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("owner_id", sa.String(64), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )
    op.create_table(
        "attachments",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("upload_key", sa.String(80), sa.ForeignKey(f"{S}.uploads.key"),
                  nullable=False, unique=True),
        sa.Column("used_for", sa.String(100), nullable=False),
        sa.Column("content_type", sa.String(100), nullable=False),
        sa.Column("size", sa.BigInteger, nullable=False),
        sa.Column("etag", sa.String(100)),
        sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=False),
        schema=S,
    )


def downgrade() -> None:
    op.drop_table("attachments", schema=S)
    op.drop_table("uploads", schema=S)
