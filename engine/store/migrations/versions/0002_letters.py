"""Letters: contacts, the delivery log (unique idempotency key), delivery attempts, the scheduler lock.

APScheduler's job table (apscheduler_jobs) is created by APScheduler itself.

Revision ID: 0002
Revises: 0001
"""
import sqlalchemy as sa
from alembic import op

import engine.store.mailing  # noqa: F401  (registers the letters' models on engine.store.database.Base for metadata comparisons)

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "contacts",
        sa.Column("party", sa.String(3), primary_key=True),
        sa.Column("email", sa.Text, nullable=False),
        sa.Column("language", sa.String(5), nullable=False),
        sa.Column("mission", sa.Text),
        sa.Column("cc", sa.Text),
        sa.Column("updated_at", TZ, nullable=False),
    )
    op.create_table(
        "letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(240), nullable=False),
        sa.Column("party", sa.String(3), nullable=False),
        sa.Column("obligation_id", sa.String(80), nullable=False),
        sa.Column("period", sa.String(80), nullable=False),
        sa.Column("stage", sa.String(80), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("language", sa.String(5), nullable=False),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("reference", sa.String(80), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", TZ),
        sa.Column("last_error", sa.Text),
        sa.Column("created_at", TZ, nullable=False),
        sa.Column("sent_at", TZ),
        sa.UniqueConstraint("key"),
    )
    op.create_index("ix_letters_party", "letters", ["party"])
    op.create_index("ix_letters_status", "letters", ["status"])
    op.create_table(
        "letter_attempts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("letter_id", sa.Integer, sa.ForeignKey("letters.id"), nullable=False),
        sa.Column("at", TZ, nullable=False),
        sa.Column("notifier", sa.String(20), nullable=False),
        sa.Column("outcome", sa.String(10), nullable=False),
        sa.Column("error", sa.Text),
    )
    op.create_index("ix_letter_attempts_letter_id", "letter_attempts", ["letter_id"])
    op.create_table(
        "scheduler_lock",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("holder", sa.Text, nullable=False),
        sa.Column("acquired_at", TZ, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("scheduler_lock")
    op.drop_index("ix_letter_attempts_letter_id", "letter_attempts")
    op.drop_table("letter_attempts")
    op.drop_index("ix_letters_status", "letters")
    op.drop_index("ix_letters_party", "letters")
    op.drop_table("letters")
    op.drop_table("contacts")
