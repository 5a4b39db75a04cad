"""Every stored obligation, change and check run keyed by its rule pack, so that several packs
can be checked into one database and the change log never mixes two treaties.

The pack of a stored obligation or change is the prefix of its obligation id (ids are
``<pack>.<article>.<role>``), so the backfill reads it from there. A check run stored before
this revision evaluated the one pack then selected: its ``pack`` stays NULL. ``obligations.article``
widens to 80 characters (a pack may cite a provision with the decision that set it).

Revision ID: 0007
Revises: 0006
"""
import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

KEYED = ("obligations", "obligation_changes")


def upgrade() -> None:
    connection = op.get_bind()
    for name in KEYED:
        op.add_column(name, sa.Column("pack", sa.String(40), nullable=True))
        table = sa.table(name, sa.column("obligation_id", sa.String), sa.column("pack", sa.String))
        # a handful of distinct ids (one per rule), so the prefix is cut in Python, the same on both dialects
        for (obligation_id,) in connection.execute(sa.select(table.c.obligation_id).distinct()).all():
            connection.execute(table.update().where(table.c.obligation_id == obligation_id)
                               .values(pack=obligation_id.split(".", 1)[0]))
        with op.batch_alter_table(name) as batch:
            batch.alter_column("pack", existing_type=sa.String(40), nullable=False)
        op.create_index(f"ix_{name}_pack", name, ["pack"])
    # another pack's articles are cited longer ("5(3)-(4); 7MSP decision"); PostgreSQL enforces the length
    with op.batch_alter_table("obligations") as batch:
        batch.alter_column("article", existing_type=sa.String(20), type_=sa.String(80))
    op.add_column("check_runs", sa.Column("pack", sa.String(40), nullable=True))


def downgrade() -> None:
    op.drop_column("check_runs", "pack")
    with op.batch_alter_table("obligations") as batch:
        batch.alter_column("article", existing_type=sa.String(80), type_=sa.String(20))
    for name in reversed(KEYED):
        op.drop_index(f"ix_{name}_pack", name)
        with op.batch_alter_table(name) as batch:
            batch.drop_column("pack")
