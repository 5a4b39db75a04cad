"""The registry snapshot keeps participants.csv's optional `effective_from` column: the date of effect
the depositary gives a notification of succession, where the registry states one (NULL elsewhere).

Revision ID: 0009
Revises: 0008
"""
import sqlalchemy as sa
from alembic import op

import engine.store.snapshot  # noqa: F401  (registers the snapshot's models on engine.store.database.Base for metadata comparisons)

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A snapshot loaded before this revision reads NULL until the next refresh; the registry's hash
    # covers participants.csv, so a registry that states a date reloads the table at the next check.
    with op.batch_alter_table("registry_participants") as batch:
        batch.add_column(sa.Column("effective_from", sa.Date))


def downgrade() -> None:
    with op.batch_alter_table("registry_participants") as batch:
        batch.drop_column("effective_from")
