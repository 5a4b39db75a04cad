"""Every mailing keyed by its rule pack: with several packs selected, each pack's items are planned
into a batch of their own, and the batch's notes are worded and re-checked with that pack's rules.

A batch planned before this revision held the one pack then selected; its pack is read from the
obligation ids of its items (``<pack>.<article>.<role>``), and a batch with no item left (all
settled at approval, or none ever) keeps the column's default, ``ccm``, the default pack of every
earlier release.

Revision ID: 0008
Revises: 0007
"""
import sqlalchemy as sa
from alembic import op

import engine.store.mailing  # noqa: F401  (registers the letters' models on engine.store.database.Base for metadata comparisons)

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

EARLIER_DEFAULT = "ccm"     # the only pack a release before 0008 could mail for: the value settings.DEFAULT_PACKS had


def upgrade() -> None:
    connection = op.get_bind()
    # NOT NULL with a server default, added in place: on SQLite, rebuilding letter_batches (batch mode) would
    # drop a table that letter_items and letters reference, which the foreign keys refuse once rows exist.
    op.add_column("letter_batches", sa.Column("pack", sa.String(40), nullable=False, server_default=EARLIER_DEFAULT))
    batches = sa.table("letter_batches", sa.column("id", sa.Integer), sa.column("pack", sa.String))
    items = sa.table("letter_items", sa.column("batch_id", sa.Integer), sa.column("obligation_id", sa.String))
    # a batch's items share one pack (one pack was selected); cut the prefix in Python, the same on both dialects
    for batch_id, obligation_id in connection.execute(
            sa.select(items.c.batch_id, sa.func.min(items.c.obligation_id)).group_by(items.c.batch_id)).all():
        connection.execute(batches.update().where(batches.c.id == batch_id)
                           .values(pack=obligation_id.split(".", 1)[0]))
    op.create_index("ix_letter_batches_pack", "letter_batches", ["pack"])


def downgrade() -> None:
    op.drop_index("ix_letter_batches_pack", "letter_batches")
    op.drop_column("letter_batches", "pack")      # in place (SQLite 3.35+), for the reason given above
