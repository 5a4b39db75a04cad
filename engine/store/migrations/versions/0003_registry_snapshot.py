"""The registry's snapshot: one table per registry file, and the hash of the registry they hold.

Loaded by ``ccm init`` and refreshed by ``ccm check`` (engine/store/snapshot.py); the files stay
the source of truth.

Revision ID: 0003
Revises: 0002
"""
import sqlalchemy as sa
from alembic import op

import engine.store.snapshot  # noqa: F401  (registers the snapshot's models on engine.store.database.Base for metadata comparisons)

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

TZ = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "registry_participants",
        sa.Column("iso3", sa.String(3), primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("signature_date", sa.Date),
        sa.Column("instrument", sa.String(20)),
        sa.Column("deposit_date", sa.Date),
        sa.Column("provisional_application_date", sa.Date),
        sa.Column("withdrawal_effective_date", sa.Date),
        sa.Column("evidence", sa.Text, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
    )
    op.create_table(
        "registry_meetings",
        sa.Column("code", sa.String(40), primary_key=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("city", sa.Text, nullable=False),
        sa.Column("start_date", sa.Date, nullable=False),
        sa.Column("end_date", sa.Date),
        sa.Column("date_precision", sa.String(10), nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
    )
    op.create_table(
        "registry_declarations",
        sa.Column("iso3", sa.String(3), primary_key=True),
        sa.Column("article", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("position", sa.String(40), nullable=False),
        sa.Column("end_of_hostilities", sa.Date),
        sa.Column("quantity", sa.Text, nullable=False),
        sa.Column("retains", sa.Boolean),
        sa.Column("retention_ended", sa.Integer),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
    )
    op.create_table(
        "registry_completions",
        sa.Column("iso3", sa.String(3), primary_key=True),
        sa.Column("article", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("completed_on", sa.Date, nullable=False),
        sa.Column("precision", sa.String(10), nullable=False),
        sa.Column("declared_at", sa.String(40)),
        sa.Column("declared_text", sa.Text, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
    )
    op.create_table(
        "registry_decisions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("iso3", sa.String(3), nullable=False),
        sa.Column("article", sa.Integer, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("meeting", sa.String(40), nullable=False),
        sa.Column("decided_on", sa.Date, nullable=False),
        sa.Column("decided_precision", sa.String(10), nullable=False),
        sa.Column("granted_deadline", sa.Date, nullable=False),
        sa.Column("document", sa.String(200), nullable=False),
        sa.Column("inferred", sa.Boolean, nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
    )
    op.create_table(
        "registry_snapshot",
        sa.Column("hash", sa.String(64), primary_key=True),
        sa.Column("loaded_at", TZ, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("registry_snapshot")
    op.drop_table("registry_decisions")
    op.drop_table("registry_completions")
    op.drop_table("registry_declarations")
    op.drop_table("registry_meetings")
    op.drop_table("registry_participants")
