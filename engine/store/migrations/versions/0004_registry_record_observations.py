"""The registry's new files in its snapshot: known extension requests, observations of the record,
published receipts; and the meetings' announced opening and status.

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

import engine.store.snapshot  # noqa: F401  (registers the snapshot's models on engine.store.database.Base for metadata comparisons)

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registry_meetings") as batch:
        batch.add_column(sa.Column("announced_start_date", sa.Date))
        batch.add_column(sa.Column("status", sa.String(20), nullable=False, server_default="held"))
    op.create_table(
        "registry_requests",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("iso3", sa.String(3), nullable=False),
        sa.Column("article", sa.Integer, nullable=False),
        sa.Column("meeting", sa.String(40), nullable=False),
        sa.Column("submitted_on", sa.Date, nullable=False),
        sa.Column("submitted_precision", sa.String(10), nullable=False),
        sa.Column("requested_deadline", sa.Date),
        sa.Column("document", sa.String(200), nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
    )
    op.create_table(
        "registry_observations",
        sa.Column("id", sa.String(80), primary_key=True),
        sa.Column("observed_on", sa.Date, nullable=False),
        sa.Column("observed_until", sa.Date, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("period", sa.String(10)),
        sa.Column("complete", sa.Boolean, nullable=False),
        sa.Column("outstanding", sa.Text, nullable=False),
        sa.Column("observer", sa.Text, nullable=False),
        sa.Column("phrase", sa.Text, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
    )
    op.create_table(
        "registry_receipts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("iso3", sa.String(3), nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("period", sa.String(10)),
        sa.Column("received_on", sa.Date, nullable=False),
        sa.Column("precision", sa.String(10), nullable=False),
        sa.Column("observer", sa.Text, nullable=False),
        sa.Column("phrase", sa.Text, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registry_receipts")
    op.drop_table("registry_observations")
    op.drop_table("registry_requests")
    with op.batch_alter_table("registry_meetings") as batch:
        batch.drop_column("status")
        batch.drop_column("announced_start_date")
