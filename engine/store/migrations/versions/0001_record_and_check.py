"""The record and the daily check: recorded events, obligations, change log, check runs.

Revision ID: 0001
Revises:
"""
import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "recorded_events",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("party", sa.String(3), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("on", sa.Date, nullable=False),
        sa.Column("period", sa.String(80)),
        sa.Column("symbol", sa.String(200)),
        sa.Column("source", sa.Text),
        sa.Column("extra", sa.JSON, nullable=False),
        sa.Column("recorded_at", TZ, nullable=False),
        sa.Column("recorded_by", sa.String(120)),
        sa.Column("comment", sa.Text),
        sa.Column("superseded_by", sa.String(80), sa.ForeignKey("recorded_events.id")),
    )
    op.create_index("ix_recorded_events_party", "recorded_events", ["party"])
    op.create_table(
        "check_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("started_at", TZ, nullable=False),
        sa.Column("finished_at", TZ),
        sa.Column("rulebook_hash", sa.String(64), nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
    )
    op.create_table(
        "obligations",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("party", sa.String(3), nullable=False),
        sa.Column("obligation_id", sa.String(80), nullable=False),
        sa.Column("period", sa.String(80), nullable=False),
        sa.Column("article", sa.String(20), nullable=False),
        sa.Column("due", sa.Date, nullable=False),
        sa.Column("original_due", sa.Date, nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("status_reason", sa.Text, nullable=False),
        sa.Column("meeting", sa.String(40)),
        sa.Column("provenance", sa.JSON, nullable=False),
        sa.Column("rulebook_hash", sa.String(64), nullable=False),
        sa.Column("computed_at", TZ, nullable=False),
        sa.Column("check_run_id", sa.Integer),
        sa.UniqueConstraint("party", "obligation_id", "period", name="uq_obligation"),
    )
    op.create_index("ix_obligations_status", "obligations", ["status"])
    op.create_table(
        "obligation_changes",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("check_run_id", sa.Integer, sa.ForeignKey("check_runs.id"), nullable=False),
        sa.Column("party", sa.String(3), nullable=False),
        sa.Column("obligation_id", sa.String(80), nullable=False),
        sa.Column("period", sa.String(80), nullable=False),
        sa.Column("field", sa.String(20), nullable=False),
        sa.Column("old", sa.Text),
        sa.Column("new", sa.Text),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", TZ, nullable=False),
    )
    op.create_index("ix_obligation_changes_check_run_id", "obligation_changes", ["check_run_id"])


def downgrade() -> None:
    op.drop_table("obligation_changes")
    op.drop_table("obligations")
    op.drop_table("check_runs")
    op.drop_index("ix_recorded_events_party", "recorded_events")
    op.drop_table("recorded_events")
