"""The registry snapshot keys declarations.csv by (iso3, article, position): a pack may declare
findings (treaty.toml `[findings]`) whose rows stand beside the row giving a party's position under
the same article.

The table is a copy of the registry files, refreshed whenever the registry's hash changes: it is
recreated empty with the new key and the stored hash is cleared, so the next check or init loads it
again. Nothing a user recorded lives in it.

Revision ID: 0010
Revises: 0009
"""
import sqlalchemy as sa
from alembic import op

import engine.store.snapshot  # noqa: F401  (registers the snapshot's models on engine.store.database.Base for metadata comparisons)

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def _recreate(key: tuple[str, ...]) -> None:
    op.drop_table("registry_declarations")
    op.create_table(
        "registry_declarations",
        sa.Column("iso3", sa.String(3), nullable=False),
        sa.Column("article", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("position", sa.String(40), nullable=False),
        sa.Column("end_of_hostilities", sa.Date),
        sa.Column("quantity", sa.Text, nullable=False),
        sa.Column("retains", sa.Boolean),
        sa.Column("retention_ended", sa.Integer),
        sa.Column("notes", sa.Text, nullable=False),
        sa.Column("sources", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint(*key),
    )
    op.execute(sa.text("DELETE FROM registry_snapshot"))   # every snapshot table is reloaded together


def upgrade() -> None:
    _recreate(("iso3", "article", "position"))


def downgrade() -> None:
    _recreate(("iso3", "article"))
