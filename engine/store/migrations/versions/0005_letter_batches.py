"""Reviewed mailings: batches of planned items, approved before their notes are queued; the letters carry their batch and approver.

A batch holds the items (one per idempotency key) planned on one day; approving it renders one
consolidated note per State into ``letters`` (queued), recording who approved it and when.

Revision ID: 0005
Revises: 0004
"""
import sqlalchemy as sa
from alembic import op

import engine.store.mailing  # noqa: F401  (registers the letters' models on engine.store.database.Base for metadata comparisons)

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "letter_batches",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("approved_by", sa.Text),
        sa.Column("approved_at", TZ),
    )
    op.create_index("ix_letter_batches_status", "letter_batches", ["status"])
    op.create_table(
        "letter_items",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(240), nullable=False),
        sa.Column("batch_id", sa.Integer, sa.ForeignKey("letter_batches.id"), nullable=False),
        sa.Column("letter_id", sa.Integer, sa.ForeignKey("letters.id")),
        sa.Column("party", sa.String(3), nullable=False),
        sa.Column("obligation_id", sa.String(80), nullable=False),
        sa.Column("period", sa.String(80), nullable=False),
        sa.Column("stage", sa.String(80), nullable=False),
        sa.Column("stage_name", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("original_due", sa.Date, nullable=False),
        sa.Column("stage_date", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("article", sa.String(40), nullable=False),
        sa.Column("basis", sa.Text, nullable=False),
        sa.Column("meeting", sa.String(40)),
        sa.Column("estimated", sa.Boolean, nullable=False),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_letter_items_batch_id", "letter_items", ["batch_id"])
    op.create_index("ix_letter_items_letter_id", "letter_items", ["letter_id"])
    op.create_index("ix_letter_items_party", "letter_items", ["party"])
    with op.batch_alter_table("letters") as batch:
        batch.add_column(sa.Column("batch_id", sa.Integer))
        batch.add_column(sa.Column("approved_by", sa.Text))
        batch.add_column(sa.Column("approved_at", TZ))
        batch.create_index("ix_letters_batch_id", ["batch_id"])


def downgrade() -> None:
    with op.batch_alter_table("letters") as batch:
        batch.drop_index("ix_letters_batch_id")
        batch.drop_column("approved_at")
        batch.drop_column("approved_by")
        batch.drop_column("batch_id")
    op.drop_index("ix_letter_items_party", "letter_items")
    op.drop_index("ix_letter_items_letter_id", "letter_items")
    op.drop_index("ix_letter_items_batch_id", "letter_items")
    op.drop_table("letter_items")
    op.drop_index("ix_letter_batches_status", "letter_batches")
    op.drop_table("letter_batches")
