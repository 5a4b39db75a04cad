"""Delivery outcome per recipient: one row per letter and address (sent, refused, deferred).

A letter's status alone cannot say that one of its two addresses refused it; these rows do, and
a retry sends only to the recipients that have not accepted it yet.

Revision ID: 0006
Revises: 0005
"""
import sqlalchemy as sa
from alembic import op

import engine.store.mailing  # noqa: F401  (registers the letters' models on engine.store.database.Base for metadata comparisons)

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "letter_recipients",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("letter_id", sa.Integer, sa.ForeignKey("letters.id"), nullable=False),
        sa.Column("address", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("detail", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("letter_id", "address", name="uq_letter_recipient"),
    )
    op.create_index("ix_letter_recipients_letter_id", "letter_recipients", ["letter_id"])


def downgrade() -> None:
    op.drop_index("ix_letter_recipients_letter_id", "letter_recipients")
    op.drop_table("letter_recipients")
